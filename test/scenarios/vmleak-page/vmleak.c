// SPDX-License-Identifier: GPL-2.0
/*
 * vmleak - a deliberately leaking module for sysak-memleak's vmalloc and page-leak tests
 * (recorded with ../shared/harness/record.sh; the harness's module interface).
 *
 *   leak_type=vmalloc  vmleak_buf_add() vmalloc()s 3-page buffers and forgets them: bulk at load,
 *                      slow_hz per second once started.  Noise: vmleak_noise_get() vmalloc()s 2-page
 *                      buffers that vmleak_noise_put() vfree()s one tick later (balanced).
 *   leak_type=page     vmleak_page_add() takes order-1 blocks with alloc_pages() and forgets them;
 *                      noise: vmleak_page_noise() takes order-0 pages freed one tick later.
 * Every leaked page starts with VMLEAK_MAGIC, then the buffer's sequence number.
 * Ground truth: debugfs vmleak/{info,objects,control}; the record is XOR-ed so it does not
 * make the leaked memory reachable.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/vmalloc.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#define VMLEAK_MAGIC 0x6b61656c6d76ULL /* "vmleak" */
#define GT_XOR 0x5a5a5a5a5a5a5a5aUL

static char *leak_type = "vmalloc";
module_param(leak_type, charp, 0444);
static unsigned int bulk = 2000;
module_param(bulk, uint, 0444);
static unsigned int slow_hz = 20;
module_param(slow_hz, uint, 0444);
static unsigned int noise_per_tick = 2;
module_param(noise_per_tick, uint, 0444);
static unsigned int max_slow = 20000;
module_param(max_slow, uint, 0444);

static bool is_page;
static unsigned long *gt;
static unsigned int gt_n, gt_n_bulk, gt_cap;
static atomic64_t st_noise_alloc, st_noise_free;
static void *noise_ptrs[64];
static unsigned int noise_n;
static struct delayed_work slow_work, noise_work;
static bool running;
static struct dentry *dir;

#define VM_PAGES 3
#define PAGE_ORDER 1

static void stamp(void *p, unsigned int pages, unsigned int seq)
{
	unsigned int i;

	for (i = 0; i < pages; i++) {
		u64 *w = p + i * PAGE_SIZE;

		w[0] = VMLEAK_MAGIC;
		w[1] = seq;
		w[2] = i;
	}
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

static noinline void *vmleak_noise_get(void)
{
	void *p;

	if (is_page) {
		struct page *pg = alloc_pages(GFP_KERNEL, 0);

		p = pg ? page_address(pg) : NULL;
	} else {
		p = vmalloc(2 * PAGE_SIZE);
	}
	if (p) {
		memset(p, 0x11, 64);
		atomic64_inc(&st_noise_alloc);
	}
	return p;
}

static noinline void vmleak_noise_put(void *p)
{
	if (is_page)
		free_pages((unsigned long)p, 0);
	else
		vfree(p);
	atomic64_inc(&st_noise_free);
}

static void leak_one(void)
{
	void *p;

	if (gt_n >= gt_cap)
		return;
	p = is_page ? vmleak_page_add(gt_n) : vmleak_buf_add(gt_n);
	if (p)
		gt[gt_n++] = (unsigned long)p ^ GT_XOR;
}

static void slow_fn(struct work_struct *w)
{
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
	if (!running)
		return;
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

static int info_show(struct seq_file *m, void *v)
{
	seq_printf(m, "module=vmleak\n");
	seq_printf(m, "leak_type=%s\n", is_page ? "page" : "vmalloc");
	seq_printf(m, "leak_functions=%s\n", is_page ? "vmleak_page_add" : "vmleak_buf_add");
	seq_printf(m, "leak_sites=%s\n", is_page ? "vmleak_page_add" : "vmleak_buf_add");
	seq_printf(m, "noise_functions=vmleak_noise_get,vmleak_noise_put\n");
	seq_printf(m, "page_header_magic=0x%016llx\n", VMLEAK_MAGIC);
	seq_printf(m, "leak_pages_per_object=%u\n", is_page ? 1 << PAGE_ORDER : VM_PAGES);
	seq_printf(m, "page_size=%lu\n", PAGE_SIZE);
	seq_printf(m, "leaked_total=%u\n", gt_n);
	seq_printf(m, "leaked_bulk=%u\n", gt_n_bulk);
	seq_printf(m, "leaked_slow=%u\n", gt_n - gt_n_bulk);
	seq_printf(m, "noise_allocs=%lld\n", atomic64_read(&st_noise_alloc));
	seq_printf(m, "noise_frees=%lld\n", atomic64_read(&st_noise_free));
	seq_printf(m, "state=%s\n", running ? "running" : "stopped");
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static void *obj_start(struct seq_file *m, loff_t *pos)
{
	if (*pos == 0)
		seq_puts(m, "# kind addr page fields\n");
	return *pos < gt_n ? pos : NULL;
}

static void *obj_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return *pos < gt_n ? pos : NULL;
}

static void obj_stop(struct seq_file *m, void *v)
{
}

static int obj_show(struct seq_file *m, void *v)
{
	loff_t i = *(loff_t *)v;
	void *p = (void *)(gt[i] ^ GT_XOR);
	struct page *pg = is_page ? virt_to_page(p) : vmalloc_to_page(p);

	seq_printf(m, "leak 0x%px 0x%px seq=%lld phase=%s\n", p, pg, i, i < gt_n_bulk ? "bulk" : "slow");
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

static int __init vmleak_init(void)
{
	unsigned int i;

	is_page = !strcmp(leak_type, "page");
	gt_cap = bulk + max_slow;
	gt = vzalloc(array_size(gt_cap, sizeof(*gt)));
	if (!gt)
		return -ENOMEM;
	INIT_DELAYED_WORK(&slow_work, slow_fn);
	INIT_DELAYED_WORK(&noise_work, noise_fn);
	for (i = 0; i < bulk; i++)
		leak_one();
	gt_n_bulk = gt_n;
	dir = debugfs_create_dir("vmleak", NULL);
	debugfs_create_file("info", 0400, dir, NULL, &info_fops);
	debugfs_create_file("objects", 0400, dir, NULL, &obj_fops);
	debugfs_create_file("control", 0200, dir, NULL, &control_fops);
	pr_info("vmleak: type=%s bulk=%u\n", is_page ? "page" : "vmalloc", gt_n);
	return 0;
}

static void __exit vmleak_exit(void)
{
	unsigned int i;

	debugfs_remove_recursive(dir);
	vmleak_stop();
	for (i = 0; i < gt_n; i++) {
		void *p = (void *)(gt[i] ^ GT_XOR);

		if (is_page)
			free_pages((unsigned long)p, PAGE_ORDER);
		else
			vfree(p);
	}
	vfree(gt);
}

module_init(vmleak_init);
module_exit(vmleak_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Deliberately leaking module (vmalloc / pages) for sysak-memleak tests");
