// SPDX-License-Identifier: GPL-2.0
/*
 * vmleak - a deliberately leaking module for sysak-memleak's tests of every leak kind, and a churning
 * no-leak control (recorded with ../shared/harness/record.sh; the harness's module interface). It
 * builds on Debian's 5.10, 6.1 and 6.12 (the harness's kcompat.h covers what differs).
 *
 *   leak_type=vmalloc  vmleak_buf_add() vmalloc()s 3-page buffers and forgets them: bulk at load,
 *                      slow_hz per second once started.  Noise: vmleak_noise_get() vmalloc()s 2-page
 *                      buffers that vmleak_noise_put() vfree()s one tick later (balanced).
 *   leak_type=page     vmleak_page_add() takes order-1 blocks with alloc_pages() and forgets them;
 *                      noise: order-0 pages freed one tick later.
 *   leak_type=named    its own cache "vmleak_conn" (80-byte struct vmleak_conn), made with a usercopy
 *                      region so that SLUB never merges it: kmem_cache_create_usercopy() skips
 *                      __kmem_cache_alias() when usersize != 0 (mm/slab_common.c, 5.10 .. 6.12);
 *                      vmleak_conn_add() leaks.  Noise: vmleak_noise_get() objects of the same cache.
 *   leak_type=merged   its own cache "vmleak_m64" (64-byte struct vmleak_conn64, no ctor, no flags):
 *                      SLUB merges it into kmalloc-64 (find_mergeable(): same size, compatible flags),
 *                      so the leak shows up in kmalloc-64 and /proc/slabinfo has no line for it;
 *                      vmleak_m64_add() leaks.
 *   leak_type=churn    nothing leaks: the named cache, kmalloc(128), vmalloc() and alloc_pages() churn
 *                      (every tick churn_per_tick objects of each kind from vmleak_churn_alloc(), each
 *                      freed 1..churn_life ticks later); the bulk load-time objects of the named cache
 *                      are freed right after they are all allocated, the rest at "stop".
 * The slab kinds keep table_entries long-lived objects of their cache on a list (not a leak).
 * Every leaked page starts with VMLEAK_MAGIC (see stamp()); every leaked slab
 * object with VMLEAK_COOKIE, &vmleak_conn_ops.
 * Ground truth: debugfs vmleak/{info,objects,control}; the record is XOR-ed so it does not
 * make the leaked memory reachable.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/list.h>
#include <linux/workqueue.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include "kcompat.h"

#define VMLEAK_MAGIC 0x6b61656c6d76ULL /* "vmleak" */
#define VMLEAK_COOKIE	0x6e6e6f636b616c76ULL	/* "vlakconn" */
#define VMLEAK_KEY_BASE	0x656c626174000000ULL
#define VMLEAK_FLAGS	0x51ab
#define GT_XOR 0x5a5a5a5a5a5a5a5aUL

static char *leak_type = "vmalloc";
module_param(leak_type, charp, 0444);
#define UINT_PARAM(name_, default_) \
	static unsigned int name_ = default_; \
	module_param(name_, uint, 0444)
UINT_PARAM(bulk, 2000);
UINT_PARAM(slow_hz, 20);
UINT_PARAM(noise_per_tick, 2);
UINT_PARAM(max_slow, 20000);
UINT_PARAM(table_entries, 2000);
UINT_PARAM(churn_per_tick, 2);
UINT_PARAM(churn_life, 16);

enum kind { K_VMALLOC, K_PAGE, K_NAMED, K_MERGED, K_CHURN };
static const char *const kind_names[] = { "vmalloc", "page", "named", "merged", "churn" };
static enum kind kind;
#define IS_SLAB (kind >= K_NAMED)

struct vmleak_ops {
	int (*open)(void *);
	void (*close)(void *);
};

/* the merged cache: 64 bytes, the size of kmalloc-64 */
struct vmleak_conn64 {
	u64 cookie;
	const struct vmleak_ops *ops;
	struct list_head node;
	u32 seq;
	u32 flags;
	u64 stamp;
	char tag[16];
};

/* the named cache (and churn): the same head and 16 bytes more, 80 bytes, no kmalloc size */
struct vmleak_conn {
	struct vmleak_conn64 head;
	u64 spare[2];
};

/* long-lived table objects: key, tag pointer, list */
struct vmleak_entry {
	u64 key;
	const char *tag;
	struct list_head node;
	u32 id;
	u32 flags;
};

static noinline int vmleak_open(void *p) { return p != NULL; }
static noinline void vmleak_close(void *p) { }
static const struct vmleak_ops vmleak_conn_ops = { .open = vmleak_open, .close = vmleak_close };
static const char vmleak_table_tag[] = "vmleak-table";

static struct kmem_cache *cache;
static size_t obj_size;
static unsigned long *gt;
static unsigned int gt_n, gt_n_bulk, gt_cap;
static LIST_HEAD(table);
static unsigned int table_n;
static atomic64_t st_noise_alloc, st_noise_free, st_churn_alloc, st_churn_free;
static void *noise_ptrs[64];
static unsigned int noise_n;
static struct delayed_work slow_work, noise_work;
static bool running;
static struct dentry *dir;
static u64 ticks;

#define VM_PAGES 3
#define PAGE_ORDER 1

/* churn: slots per kind (named cache, kmalloc-128, vmalloc, page), each freed when it is due */
#define CHURN_KINDS 4
#define CHURN_SLOTS 1024
static void *churn[CHURN_KINDS][CHURN_SLOTS];
static u64 churn_due[CHURN_KINDS][CHURN_SLOTS];

/*
 * Page headers, as the harness's gt_check.py reads them: vmalloc buffers u64 magic, u32 seq, u32 page
 * index; page blocks u64 magic, u64 pfn of that page.
 */
static void stamp(void *p, unsigned int pages, unsigned int seq)
{
	unsigned int i;

	for (i = 0; i < pages; i++) {
		u64 *w = p + i * PAGE_SIZE;

		w[0] = VMLEAK_MAGIC;
		w[1] = kind == K_PAGE ? page_to_pfn(virt_to_page(w)) : seq | (u64)i << 32;
	}
}

/* the common 64-byte prefix of both slab shapes; list poison for even seq, self pointers for odd */
static void fill_conn(struct vmleak_conn64 *c, unsigned int seq)
{
	LIST_HEAD(tmp);

	c->cookie = VMLEAK_COOKIE;
	c->ops = &vmleak_conn_ops;
	c->seq = seq;
	c->flags = VMLEAK_FLAGS;
	c->stamp = ticks;
	strscpy(c->tag, kind == K_MERGED ? "vmleak-m64" : "vmleak-conn", sizeof(c->tag));
	list_add(&c->node, &tmp);
	if (seq & 1)
		list_del_init(&c->node);
	else
		list_del(&c->node);
}

static noinline void *vmleak_buf_add(unsigned int seq)
{
	void *p = vmalloc(VM_PAGES * PAGE_SIZE);

	if (p)
		stamp(p, VM_PAGES, seq);
	return p;
}

static noinline void *vmleak_page_add(unsigned int seq)
{
	struct page *pg = alloc_pages(GFP_KERNEL, PAGE_ORDER);
	void *p;

	if (!pg)
		return NULL;
	p = page_address(pg);
	stamp(p, 1 << PAGE_ORDER, seq);
	return p;
}

static noinline void *vmleak_conn_add(unsigned int seq)
{
	struct vmleak_conn *c = kmem_cache_alloc(cache, GFP_KERNEL);

	if (c) {
		memset(c->spare, 0, sizeof(c->spare));
		fill_conn(&c->head, seq);
	}
	return c;
}

static noinline void *vmleak_m64_add(unsigned int seq)
{
	struct vmleak_conn64 *c = kmem_cache_alloc(cache, GFP_KERNEL);

	if (c)
		fill_conn(c, seq);
	return c;
}

static noinline void vmleak_conn_del(void *p)
{
	kmem_cache_free(cache, p);
	atomic64_inc(&st_churn_free);	/* not a tail call: the call site stays ours */
}

static noinline void *vmleak_noise_get(void)
{
	void *p;

	if (IS_SLAB) {
		p = kmem_cache_alloc(cache, GFP_KERNEL);
	} else if (kind == K_PAGE) {
		struct page *pg = alloc_pages(GFP_KERNEL, 0);

		p = pg ? page_address(pg) : NULL;
	} else {
		p = vmalloc(2 * PAGE_SIZE);
	}
	if (p) {
		memset(p, 0x11, 48);
		atomic64_inc(&st_noise_alloc);
	}
	return p;
}

static noinline void vmleak_noise_put(void *p)
{
	if (IS_SLAB)
		kmem_cache_free(cache, p);
	else if (kind == K_PAGE)
		free_pages((unsigned long)p, 0);
	else
		vfree(p);
	atomic64_inc(&st_noise_free);
}

static noinline int vmleak_table_fill(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct vmleak_entry *e = kmem_cache_alloc(cache, GFP_KERNEL);

		if (!e)
			return -ENOMEM;
		e->key = VMLEAK_KEY_BASE + i;
		e->tag = vmleak_table_tag;
		e->id = i;
		e->flags = 0;
		list_add_tail(&e->node, &table);
		table_n++;
	}
	return 0;
}

static noinline void *vmleak_churn_alloc(int k, unsigned int seq)
{
	void *p = NULL;
	struct page *pg;

	switch (k) {
	case 0:
		p = kmem_cache_alloc(cache, GFP_KERNEL);
		if (p)
			fill_conn(p, seq);
		break;
	case 1:
		p = kmalloc(128, GFP_KERNEL);
		if (p)
			memset(p, 0x5c, 128);
		break;
	case 2:
		p = vmalloc(2 * PAGE_SIZE);
		if (p)
			memset(p, 0x5d, 64);
		break;
	case 3:
		pg = alloc_pages(GFP_KERNEL, 0);
		p = pg ? page_address(pg) : NULL;
		if (p)
			memset(p, 0x5e, 64);
		break;
	}
	if (p)
		atomic64_inc(&st_churn_alloc);
	return p;
}

static noinline void vmleak_churn_free(int k, void *p)
{
	switch (k) {
	case 0: kmem_cache_free(cache, p); break;
	case 1: kfree(p); break;
	case 2: vfree(p); break;
	case 3: free_pages((unsigned long)p, 0); break;
	}
	atomic64_inc(&st_churn_free);
}

static void churn_tick(bool drain)
{
	unsigned int k, i, made;

	for (k = 0; k < CHURN_KINDS; k++) {
		for (i = 0; i < CHURN_SLOTS; i++)
			if (churn[k][i] && (drain || churn_due[k][i] <= ticks)) {
				vmleak_churn_free(k, churn[k][i]);
				churn[k][i] = NULL;
			}
		for (i = 0, made = 0; !drain && i < CHURN_SLOTS && made < churn_per_tick; i++) {
			if (churn[k][i])
				continue;
			churn[k][i] = vmleak_churn_alloc(k, (unsigned int)ticks);
			churn_due[k][i] = ticks + 1 + (i * 7 + ticks) % max(1U, churn_life);
			made++;
		}
	}
}

static void *leak_alloc(unsigned int seq)
{
	switch (kind) {
	case K_VMALLOC: return vmleak_buf_add(seq);
	case K_PAGE: return vmleak_page_add(seq);
	case K_MERGED: return vmleak_m64_add(seq);
	default: return vmleak_conn_add(seq);	/* named; churn's bulk, freed at load */
	}
}

static void leak_free(void *p)
{
	if (IS_SLAB)
		kmem_cache_free(cache, p);
	else if (kind == K_PAGE)
		free_pages((unsigned long)p, PAGE_ORDER);
	else
		vfree(p);
}

static void leak_one(void)
{
	void *p;

	if (gt_n >= gt_cap)
		return;
	p = leak_alloc(gt_n);
	if (p)
		gt[gt_n++] = (unsigned long)p ^ GT_XOR;
}

static void slow_fn(struct work_struct *w)
{
	if (kind != K_CHURN)
		leak_one();
	if (running)
		schedule_delayed_work(&slow_work, max(1UL, (unsigned long)HZ / max(1U, slow_hz)));
}

static void noise_fn(struct work_struct *w)
{
	unsigned int i;

	for (i = 0; i < noise_n; i++)
		vmleak_noise_put(noise_ptrs[i]);
	noise_n = 0;
	if (kind == K_CHURN)
		churn_tick(!running);
	if (!running)
		return;
	ticks++;
	for (i = 0; i < noise_per_tick && i < ARRAY_SIZE(noise_ptrs); i++) {
		void *p = vmleak_noise_get();

		if (p)
			noise_ptrs[noise_n++] = p;
	}
	schedule_delayed_work(&noise_work, 1);
}

static void vmleak_start(void)
{
	if (running)
		return;
	running = true;
	schedule_delayed_work(&slow_work, 1);
	schedule_delayed_work(&noise_work, 1);
}

static void vmleak_stop(void)
{
	running = false;
	cancel_delayed_work_sync(&slow_work);
	cancel_delayed_work_sync(&noise_work);
	noise_fn(NULL);
}

static const char *leak_fn(void)
{
	static const char *const fns[] = { "vmleak_buf_add", "vmleak_page_add", "vmleak_conn_add", "vmleak_m64_add", "" };

	return fns[kind];
}

/* the slab kinds' cache block: for "merged" the cache SLUB merged it into (kcompat.h: unknown on 6.8+) */
static void info_cache(struct seq_file *m)
{
	seq_printf(m, "cache_requested_name=%s\n", kind == K_MERGED ? "vmleak_m64" : "vmleak_conn");
	seq_printf(m, "cache=%s\n", KC_CACHE_NAME(cache));
	seq_printf(m, "cache_addr=0x%px\n", cache);
	seq_printf(m, "cache_object_size=%u\n", (unsigned int)KC_CACHE_OBJECT_SIZE(cache));
	kc_seq_field(m, "cache_size", "%u", cache->size);
	kc_seq_field(m, "cache_free_pointer_offset", "%u", cache->offset);
	kc_seq_field(m, "cache_slab_order", "%u", cache->oo.x >> 16);
	kc_seq_field(m, "cache_objects_per_slab", "%u", cache->oo.x & 0xffff);
	seq_printf(m, "leak_struct=%s\n", kind == K_MERGED ? "vmleak_conn64" : "vmleak_conn");
	seq_printf(m, "leak_alloc_size=%zu\n", obj_size);
	seq_printf(m, "leak_cookie=0x%016llx\n", VMLEAK_COOKIE);
	if (kind != K_CHURN)
		seq_printf(m, "leak_check=0:u64:0x%016llx,8:u64:0x%px,36:u32:0x%x\n", VMLEAK_COOKIE, &vmleak_conn_ops, VMLEAK_FLAGS);
	seq_printf(m, "table_check=8:u64:0x%px\n", vmleak_table_tag);
	seq_printf(m, "leak_layout=cookie@0:u64,ops@8:ptr,node.next@16:ptr,node.prev@24:ptr,seq@32:u32,flags@36:u32,stamp@40:u64,tag@48:char16\n");
	seq_printf(m, "sym_ops=0x%px %pS\n", &vmleak_conn_ops, &vmleak_conn_ops);
	seq_printf(m, "table_functions=vmleak_table_fill\n");
	seq_printf(m, "table_objects=%u\n", table_n);
}

static int info_show(struct seq_file *m, void *v)
{
	seq_printf(m, "module=vmleak\n");
	seq_printf(m, "mode=%s\n", kind_names[kind]);
	seq_printf(m, "leak_type=%s\n", kind == K_CHURN ? "none" : IS_SLAB ? "slab" : kind_names[kind]);
	if (kind != K_CHURN) {
		seq_printf(m, "leak_functions=%s\n", leak_fn());
		seq_printf(m, "leak_sites=%s\n", leak_fn());
	} else {
		seq_printf(m, "churn_functions=vmleak_churn_alloc,vmleak_churn_free\n");
	}
	seq_printf(m, "noise_functions=vmleak_noise_get,vmleak_noise_put\n");
	if (IS_SLAB)
		info_cache(m);
	else
		seq_printf(m, "page_header_magic=0x%016llx\n", VMLEAK_MAGIC);
	seq_printf(m, "leak_pages_per_object=%u\n", kind == K_PAGE ? 1 << PAGE_ORDER : kind == K_VMALLOC ? VM_PAGES : 0);
	seq_printf(m, "page_size=%lu\n", PAGE_SIZE);
	seq_printf(m, "leaked_total=%u\n", gt_n);
	seq_printf(m, "leaked_bulk=%u\n", gt_n_bulk);
	seq_printf(m, "leaked_slow=%u\n", gt_n - gt_n_bulk);
	seq_printf(m, "noise_allocs=%lld\n", atomic64_read(&st_noise_alloc));
	seq_printf(m, "noise_frees=%lld\n", atomic64_read(&st_noise_free));
	seq_printf(m, "churn_allocs=%lld\n", atomic64_read(&st_churn_alloc));
	seq_printf(m, "churn_frees=%lld\n", atomic64_read(&st_churn_free));
	seq_printf(m, "state=%s\n", running ? "running" : "stopped");
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static void *obj_start(struct seq_file *m, loff_t *pos)
{
	if (*pos == 0)
		seq_puts(m, "# kind addr page fields\n");
	return *pos < gt_n + table_n ? pos : NULL;
}

static void *obj_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return *pos < gt_n + table_n ? pos : NULL;
}

static void obj_stop(struct seq_file *m, void *v)
{
}

/* PAGE: the slab's address (slab kinds), the first backing struct page (vmalloc), the struct page (page) */
static int obj_show(struct seq_file *m, void *v)
{
	loff_t i = *(loff_t *)v;
	struct vmleak_entry *e;
	loff_t k;

	if (i < gt_n) {
		void *p = (void *)(gt[i] ^ GT_XOR);
		const char *phase = i < gt_n_bulk ? "bulk" : "slow";

		if (IS_SLAB)
			seq_printf(m, "leak 0x%px 0x%lx seq=%lld phase=%s\n", p, (unsigned long)KC_SLAB_BASE(p, cache), i, phase);
		else if (kind == K_PAGE)
			seq_printf(m, "leak 0x%px 0x%px seq=%lld phase=%s pfn=0x%lx order=%u\n", p, virt_to_page(p), i, phase,
				   page_to_pfn(virt_to_page(p)), PAGE_ORDER);
		else
			seq_printf(m, "leak 0x%px 0x%px seq=%lld phase=%s pages=%u\n", p, vmalloc_to_page(p), i, phase, VM_PAGES);
		return 0;
	}
	k = i - gt_n;	/* the table: walked to entry k (short, read once) */
	list_for_each_entry(e, &table, node)
		if (k-- == 0) {
			seq_printf(m, "table 0x%px 0x%lx id=%u\n", e, (unsigned long)KC_SLAB_BASE(e, cache), e->id);
			break;
		}
	return 0;
}

static const struct seq_operations obj_sops = {
	.start = obj_start, .next = obj_next, .stop = obj_stop, .show = obj_show,
};
DEFINE_SEQ_ATTRIBUTE(obj);

static ssize_t control_write(struct file *f, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[16] = {};

	if (copy_from_user(buf, ubuf, min(len, sizeof(buf) - 1)))
		return -EFAULT;
	if (!strncmp(buf, "start", 5))
		vmleak_start();
	else if (!strncmp(buf, "stop", 4))
		vmleak_stop();
	else
		return -EINVAL;
	return len;
}

static const struct file_operations control_fops = {
	.owner = THIS_MODULE, .write = control_write, .llseek = noop_llseek,
};

static void free_all(void)
{
	struct vmleak_entry *e, *n;
	unsigned int i;

	list_for_each_entry_safe(e, n, &table, node) {
		list_del(&e->node);
		kmem_cache_free(cache, e);
	}
	table_n = 0;
	for (i = 0; i < gt_n; i++)
		leak_free((void *)(gt[i] ^ GT_XOR));
	gt_n = 0;
	vfree(gt);
	kmem_cache_destroy(cache);	/* NULL for vmalloc/page */
}

static int __init vmleak_init(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kind_names); i++)
		if (!strcmp(leak_type, kind_names[i]))
			kind = i;
	if (kind == K_MERGED) {
		obj_size = sizeof(struct vmleak_conn64);
		cache = kmem_cache_create("vmleak_m64", obj_size, 0, 0, NULL);
	} else if (IS_SLAB) {
		obj_size = sizeof(struct vmleak_conn);
		cache = kmem_cache_create_usercopy("vmleak_conn", obj_size, 0, 0, 0, obj_size, NULL);
	}
	if (IS_SLAB && !cache)
		return -ENOMEM;
	gt_cap = bulk + max_slow;
	gt = vzalloc(array_size(gt_cap, sizeof(*gt)));
	if (!gt)
		goto nomem;
	INIT_DELAYED_WORK(&slow_work, slow_fn);
	INIT_DELAYED_WORK(&noise_work, noise_fn);
	for (i = 0; i < bulk; i++)
		leak_one();
	if (kind == K_CHURN) {
		/* the control: the bulk objects are freed once they are all allocated */
		for (i = 0; i < gt_n; i++)
			vmleak_conn_del((void *)(gt[i] ^ GT_XOR));
		gt_n = 0;
	}
	gt_n_bulk = gt_n;
	if (IS_SLAB && vmleak_table_fill(table_entries))
		goto nomem;
	dir = debugfs_create_dir("vmleak", NULL);
	debugfs_create_file("info", 0400, dir, NULL, &info_fops);
	debugfs_create_file("objects", 0400, dir, NULL, &obj_fops);
	debugfs_create_file("control", 0200, dir, NULL, &control_fops);
	pr_info("vmleak: type=%s bulk=%u\n", kind_names[kind], gt_n);
	return 0;
nomem:
	free_all();
	return -ENOMEM;
}

static void __exit vmleak_exit(void)
{
	debugfs_remove_recursive(dir);
	vmleak_stop();
	free_all();
}

module_init(vmleak_init);
module_exit(vmleak_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Deliberately leaking module (vmalloc, pages, named and merged slab caches) and a churning no-leak control for sysak-memleak tests");
