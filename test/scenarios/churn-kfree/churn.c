// SPDX-License-Identifier: GPL-2.0
/*
 * churn - busy-machine scenarios for sysak-memleak (recorded with ../shared/harness/record.sh;
 * the harness's module interface).  Every object below lands in kmalloc-64.
 *
 *   struct churn_rec  (56 B) a long-lived table of table_n records, allocated at load by
 *                     churn_table_fill() and REFRESHED IN PLACE while running: churn_rec_replace()
 *                     allocates a new record, copies the old one, bumps its generation, publishes
 *                     it (rcu_assign_pointer) and frees the old one:
 *                       free_mode=kfree     churn_rec_free(): kfree() right away
 *                       free_mode=call_rcu  call_rcu(), the callback tail-calls kfree(): the
 *                                           kfree event's call site is RCU's (rcu_do_batch)
 *                       free_mode=kfree_rcu kfree_rcu(): freed in batches by RCU's kfree_rcu_work
 *                     Round robin, refresh_hz records per second: nothing of the table leaks.
 *   struct churn_conn (40 B) LEAKED by churn_conn_add(): bulk at load, slow_hz per second.
 *   struct churn_sess (48 B) LEAKED by churn_sess_add() when leak2=1 (a second leaker with a
 *                     different shape): bulk2 at load, slow2_hz per second.
 *   struct churn_tmp  (48 B) noise: churn_tmp_get() allocations freed by churn_tmp_put() one tick
 *                     later.
 * Ground truth: debugfs churn/{info,objects,control}.  Leaked objects are recorded XOR-ed so the
 * record does not make them reachable; "table" lines are the records published at "stop".
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include "kcompat.h"
#include <linux/list.h>
#include <linux/poison.h>
#include <linux/rcupdate.h>
#include <linux/workqueue.h>
#include <linux/jiffies.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/vmalloc.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>
#include <linux/smp.h>
#include <linux/uaccess.h>
#include <linux/string.h>
#include <linux/math64.h>
#include <linux/delay.h>

#define CHURN_REC_MAGIC		0x6365725f6e727563ULL	/* "churn_rec" */
#define CHURN_CONN_COOKIE	0x6e6e6f636e727563ULL	/* "churnconn" */
#define CHURN_CONN_FLAGS	0x0000c0deU
#define CHURN_SESS_MAGIC	0x737365736e727563ULL	/* "churnsess" */
#define CHURN_TMP_MAGIC		0x746d70746d70a5a5ULL
#define CHURN_GT_XOR		0x5a5a5a5a5a5a5a5aUL
#define CHURN_NOISE_MAX		64

struct churn_ops {
	const char *name;
	u64 (*hash)(const void *obj);
};

/* 56 bytes: the refreshed record */
struct churn_rec {
	u64 magic;			/* CHURN_REC_MAGIC */
	const struct churn_ops *ops;	/* &churn_rec_ops */
	u32 id;
	u32 gen;			/* bumped by every refresh */
	u64 key;			/* hash of id */
	struct rcu_head rcu;		/* zero while published */
	u64 stamp;			/* jiffies of the last refresh */
};

/* 40 bytes: the first leaker */
struct churn_conn {
	u64 cookie;			/* CHURN_CONN_COOKIE */
	const struct churn_ops *ops;	/* &churn_conn_ops */
	struct list_head node;		/* even seq: LIST_POISON1/2, odd seq: self */
	u32 seq;
	u32 flags;			/* CHURN_CONN_FLAGS */
};

/* 48 bytes: the second leaker (leak2=1) */
struct churn_sess {
	const struct churn_ops *ops;	/* &churn_sess_ops */
	u64 magic;			/* CHURN_SESS_MAGIC */
	u32 seq;
	u32 state;			/* 3 */
	void *owner;			/* &churn_sess_owner (module .bss) */
	u64 zero[2];
};

/* 48 bytes: noise */
struct churn_tmp {
	u64 magic;
	u64 stamp;
	u32 cpu;
	u32 idx;
	u8 payload[24];
};

static char *free_mode = "kfree";
module_param(free_mode, charp, 0444);
static unsigned int table_n = 30000;
module_param(table_n, uint, 0444);
static unsigned int refresh_hz = 50;
module_param(refresh_hz, uint, 0444);
static unsigned int bulk = 20000;
module_param(bulk, uint, 0444);
static unsigned int slow_hz = 20;
module_param(slow_hz, uint, 0444);
static int leak2;
module_param(leak2, int, 0444);
static unsigned int bulk2 = 15000;
module_param(bulk2, uint, 0444);
static unsigned int slow2_hz = 15;
module_param(slow2_hz, uint, 0444);
static unsigned int noise_per_tick = 4;
module_param(noise_per_tick, uint, 0444);
static unsigned int max_slow = 50000;
module_param(max_slow, uint, 0444);

enum { FREE_KFREE, FREE_CALL_RCU, FREE_KFREE_RCU };
static int fmode;

static u64 churn_hash(const void *obj) { return (unsigned long)obj * 0x9e3779b97f4a7c15ULL; }
static const struct churn_ops churn_rec_ops = { .name = "churn-rec", .hash = churn_hash };
static const struct churn_ops churn_conn_ops = { .name = "churn-conn", .hash = churn_hash };
static const struct churn_ops churn_sess_ops = { .name = "churn-sess", .hash = churn_hash };
static unsigned long churn_sess_owner;

static struct churn_rec __rcu **tbl;
static unsigned int tbl_n, next_refresh;

/* leaked objects, XOR-ed: kind 0 conn, 1 sess */
struct gt_ent { unsigned long x; u32 seq; u8 fn; u8 slow; };
static struct gt_ent *gt;
static unsigned int gt_n, gt_cap, gt_n_bulk;
static DEFINE_SPINLOCK(gt_lock);
static LIST_HEAD(conn_pending);
static u32 conn_seq, sess_seq;

static struct churn_tmp *noise_batch[CHURN_NOISE_MAX];
static unsigned int noise_batch_n;

static atomic64_t st_replaced, st_rec_freed, st_tmp_alloc, st_tmp_free;
static unsigned int st_conn_runs, st_sess_runs, st_refresh_runs;
static unsigned long st_start_jiffies;
static DEFINE_MUTEX(ctl_lock);
static bool running, stopping;
static struct dentry *dir;

static void leak_workfn(struct work_struct *w);
static void refresh_workfn(struct work_struct *w);
static void noise_workfn(struct work_struct *w);
static DECLARE_DELAYED_WORK(leak_work, leak_workfn);
static DECLARE_DELAYED_WORK(refresh_work, refresh_workfn);
static DECLARE_DELAYED_WORK(noise_work, noise_workfn);

static void gt_record(void *p, u32 seq, u8 fn, u8 slow)
{
	spin_lock(&gt_lock);
	if (gt_n < gt_cap)
		gt[gt_n++] = (struct gt_ent){ (unsigned long)p ^ CHURN_GT_XOR, seq, fn, slow };
	spin_unlock(&gt_lock);
}

/* LEAK SITE 1 */
static noinline struct churn_conn *churn_conn_add(void)
{
	struct churn_conn *c = kmalloc(sizeof(*c), GFP_KERNEL);

	if (!c)
		return NULL;
	c->cookie = CHURN_CONN_COOKIE;
	c->ops = &churn_conn_ops;
	c->flags = CHURN_CONN_FLAGS;
	INIT_LIST_HEAD(&c->node);
	c->seq = conn_seq++;
	list_add(&c->node, &conn_pending);
	if (c->seq & 1)
		list_del_init(&c->node);
	else
		list_del(&c->node);
	return c;
}

/* LEAK SITE 2 (leak2=1) */
static noinline struct churn_sess *churn_sess_add(void)
{
	struct churn_sess *s = kmalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->ops = &churn_sess_ops;
	s->magic = CHURN_SESS_MAGIC;
	s->seq = sess_seq++;
	s->state = 3;
	s->owner = &churn_sess_owner;
	s->zero[0] = s->zero[1] = 0;
	return s;
}

static noinline struct churn_rec *churn_rec_new(u32 id)
{
	struct churn_rec *r = kmalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return NULL;
	r->magic = CHURN_REC_MAGIC;
	r->ops = &churn_rec_ops;
	r->id = id;
	r->gen = 0;
	r->key = (u64)id * 0x9e3779b97f4a7c15ULL;
	memset(&r->rcu, 0, sizeof(r->rcu));
	r->stamp = jiffies;
	return r;
}

/* the counter update after kfree() keeps it out of tail position: call site = this function */
static noinline void churn_rec_free(struct churn_rec *r)
{
	kfree(r);
	atomic64_inc(&st_rec_freed);
}

/* RCU callback: kfree() as a tail call, so the kfree event's call site is RCU's */
static void churn_rec_free_rcu(struct rcu_head *h)
{
	kfree(container_of(h, struct churn_rec, rcu));
}

/* THE REPLACING SITE: allocate, copy, publish, free the old record */
static noinline int churn_rec_replace(unsigned int i)
{
	struct churn_rec *old = rcu_dereference_protected(tbl[i], 1);
	struct churn_rec *r = kmalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return -ENOMEM;
	*r = *old;
	r->gen++;
	r->stamp = jiffies;
	rcu_assign_pointer(tbl[i], r);
	atomic64_inc(&st_replaced);
	switch (fmode) {
	case FREE_CALL_RCU:
		call_rcu(&old->rcu, churn_rec_free_rcu);
		atomic64_inc(&st_rec_freed);
		break;
	case FREE_KFREE_RCU:
		kfree_rcu(old, rcu);
		atomic64_inc(&st_rec_freed);
		break;
	default:
		churn_rec_free(old);
	}
	return 0;
}

static noinline int churn_table_fill(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct churn_rec *r = churn_rec_new(i);

		if (!r)
			return -ENOMEM;
		RCU_INIT_POINTER(tbl[i], r);
		tbl_n++;
		if (!(i & 1023))
			cond_resched();
	}
	return 0;
}

static noinline int churn_bulk_leak(void)
{
	unsigned int i;

	for (i = 0; i < bulk; i++) {
		struct churn_conn *c = churn_conn_add();

		if (!c)
			return -ENOMEM;
		gt_record(c, c->seq, 0, 0);
		if (!(i & 1023))
			cond_resched();
	}
	for (i = 0; leak2 && i < bulk2; i++) {
		struct churn_sess *s = churn_sess_add();

		if (!s)
			return -ENOMEM;
		gt_record(s, s->seq, 1, 0);
		if (!(i & 1023))
			cond_resched();
	}
	gt_n_bulk = gt_n;
	return 0;
}

static u64 due(unsigned int hz)
{
	return div_u64((u64)(jiffies - st_start_jiffies + 1) * hz, HZ) + 1;
}

static void leak_workfn(struct work_struct *w)
{
	u64 d1 = due(slow_hz), d2 = leak2 ? due(slow2_hz) : 0;

	while (st_conn_runs < d1 && !READ_ONCE(stopping)) {
		struct churn_conn *c = churn_conn_add();

		st_conn_runs++;
		if (c)
			gt_record(c, c->seq, 0, 1);
	}
	while (st_sess_runs < d2 && !READ_ONCE(stopping)) {
		struct churn_sess *s = churn_sess_add();

		st_sess_runs++;
		if (s)
			gt_record(s, s->seq, 1, 1);
	}
	if (!READ_ONCE(stopping))
		schedule_delayed_work(&leak_work, max(1UL, msecs_to_jiffies(20)));
}

static void refresh_workfn(struct work_struct *w)
{
	u64 d = due(refresh_hz);

	while (tbl_n && st_refresh_runs < d && !READ_ONCE(stopping)) {
		churn_rec_replace(next_refresh);
		next_refresh = (next_refresh + 1) % tbl_n;
		st_refresh_runs++;
	}
	if (!READ_ONCE(stopping))
		schedule_delayed_work(&refresh_work, max(1UL, msecs_to_jiffies(20)));
}

static noinline struct churn_tmp *churn_tmp_get(unsigned int idx)
{
	struct churn_tmp *t = kmalloc(sizeof(*t), GFP_KERNEL);

	if (!t)
		return NULL;
	t->magic = CHURN_TMP_MAGIC;
	t->stamp = jiffies;
	t->cpu = raw_smp_processor_id();
	t->idx = idx;
	memset(t->payload, 0x30 + (idx & 0xf), sizeof(t->payload));
	atomic64_inc(&st_tmp_alloc);
	return t;
}

static noinline void churn_tmp_put(struct churn_tmp *t)
{
	kfree(t);
	atomic64_inc(&st_tmp_free);
}

static void noise_drain(void)
{
	unsigned int i;

	for (i = 0; i < noise_batch_n; i++)
		churn_tmp_put(noise_batch[i]);
	noise_batch_n = 0;
}

static void noise_workfn(struct work_struct *w)
{
	unsigned int i, n = min_t(unsigned int, noise_per_tick, CHURN_NOISE_MAX);

	noise_drain();
	for (i = 0; i < n; i++) {
		struct churn_tmp *t = churn_tmp_get(i);

		if (t)
			noise_batch[noise_batch_n++] = t;
	}
	if (!READ_ONCE(stopping))
		schedule_delayed_work(&noise_work, 1);
}

static void churn_start(void)
{
	mutex_lock(&ctl_lock);
	if (!running && !stopping) {
		running = true;
		st_start_jiffies = jiffies;
		schedule_delayed_work(&noise_work, 1);
		schedule_delayed_work(&leak_work, 1);
		schedule_delayed_work(&refresh_work, 1);
	}
	mutex_unlock(&ctl_lock);
}

static void churn_stop(void)
{
	mutex_lock(&ctl_lock);
	WRITE_ONCE(stopping, true);
	cancel_delayed_work_sync(&leak_work);
	cancel_delayed_work_sync(&refresh_work);
	cancel_delayed_work_sync(&noise_work);
	noise_drain();
	/* every replaced record is freed before the ground truth is read */
	rcu_barrier();
	if (fmode == FREE_KFREE_RCU)
		msleep(2000);	/* kfree_rcu batches drain by their own timer */
	running = false;
	mutex_unlock(&ctl_lock);
}

#define FN(f) seq_printf(m, "func_%s=0x%px %pS\n", #f, (void *)f, (void *)f)

static int info_show(struct seq_file *m, void *v)
{
	unsigned int n, nb, i, slow[2] = {}, tot[2] = {};

	spin_lock(&gt_lock);
	n = gt_n;
	nb = gt_n_bulk;
	for (i = 0; i < n; i++) {
		tot[gt[i].fn]++;
		slow[gt[i].fn] += gt[i].slow;
	}
	spin_unlock(&gt_lock);
	seq_printf(m, "module=%s\n", THIS_MODULE->name);
	seq_printf(m, "leak_type=slab\n");
	seq_printf(m, "state=%s\n", running ? "running" : (stopping ? "stopped" : "loaded"));
	KC_SEQ_KMALLOC_CACHE(m, sizeof(struct churn_conn));
	seq_printf(m, "noise_cache=%s\n", KC_KMALLOC_NAME(sizeof(struct churn_tmp)));
	seq_printf(m, "table_cache=%s\n", KC_KMALLOC_NAME(sizeof(struct churn_rec)));
	seq_printf(m, "leak2_cache=%s\n", KC_KMALLOC_NAME(sizeof(struct churn_sess)));
	seq_printf(m, "page_size=%lu\n", PAGE_SIZE);
	seq_printf(m, "free_mode=%s\n", free_mode);
	seq_printf(m, "leak_functions=%s\n", leak2 ? "churn_conn_add,churn_sess_add" : "churn_conn_add");
	seq_printf(m, "leak_sites=%s\n", leak2 ? "churn_conn_add,churn_sess_add" : "churn_conn_add");
	seq_printf(m, "replacing_sites=%s\n", refresh_hz && table_n ? "churn_rec_replace" : "");
	seq_printf(m, "replacing_free_sites=%s\n", !(refresh_hz && table_n) ? "" :
		   fmode == FREE_KFREE ? "churn_rec_free" : fmode == FREE_CALL_RCU ? "rcu_do_batch" :
		   "kfree_rcu_work");
	seq_printf(m, "noise_functions=churn_tmp_get,churn_tmp_put\n");
	seq_printf(m, "table_functions=churn_table_fill,churn_rec_new,churn_rec_replace\n");
	seq_printf(m, "leak_struct.churn_conn_add=churn_conn\n");
	seq_printf(m, "leak_struct.churn_sess_add=churn_sess\n");
	seq_printf(m, "table_struct=churn_rec\n");
	seq_printf(m, "noise_struct=churn_tmp\n");
	seq_printf(m, "leak_check.churn_conn_add=0:u64:0x%016llx,8:u64:0x%px,36:u32:0x%x\n",
		   CHURN_CONN_COOKIE, &churn_conn_ops, CHURN_CONN_FLAGS);
	seq_printf(m, "leak_check.churn_sess_add=0:u64:0x%px,8:u64:0x%016llx,20:u32:3,24:u64:0x%px\n",
		   &churn_sess_ops, CHURN_SESS_MAGIC, &churn_sess_owner);
	seq_printf(m, "table_check=0:u64:0x%016llx,8:u64:0x%px,32:u64:0,40:u64:0\n",
		   CHURN_REC_MAGIC, &churn_rec_ops);
	seq_printf(m, "sym_ops=0x%px %pS\n", &churn_conn_ops, &churn_conn_ops);
	seq_printf(m, "sym_churn_rec_ops=0x%px %pS\n", &churn_rec_ops, &churn_rec_ops);
	seq_printf(m, "sym_churn_sess_ops=0x%px %pS\n", &churn_sess_ops, &churn_sess_ops);
	seq_printf(m, "sym_churn_sess_owner=0x%px %pS\n", &churn_sess_owner, &churn_sess_owner);
	FN(churn_conn_add);
	FN(churn_sess_add);
	FN(churn_rec_new);
	FN(churn_rec_replace);
	FN(churn_rec_free);
	FN(churn_rec_free_rcu);
	FN(churn_table_fill);
	FN(churn_tmp_get);
	FN(churn_tmp_put);
	seq_printf(m, "param_table_n=%u\n", table_n);
	seq_printf(m, "param_refresh_hz=%u\n", refresh_hz);
	seq_printf(m, "param_bulk=%u\n", bulk);
	seq_printf(m, "param_slow_hz=%u\n", slow_hz);
	seq_printf(m, "param_leak2=%d\n", leak2);
	seq_printf(m, "param_bulk2=%u\n", bulk2);
	seq_printf(m, "param_slow2_hz=%u\n", slow2_hz);
	seq_printf(m, "leaked_total=%u\n", n);
	seq_printf(m, "leaked_bulk=%u\n", nb);
	seq_printf(m, "leaked_slow=%u\n", n - nb);
	seq_printf(m, "leaked_total.churn_conn_add=%u\n", tot[0]);
	seq_printf(m, "leaked_slow.churn_conn_add=%u\n", slow[0]);
	seq_printf(m, "leaked_total.churn_sess_add=%u\n", tot[1]);
	seq_printf(m, "leaked_slow.churn_sess_add=%u\n", slow[1]);
	seq_printf(m, "table_objects=%u\n", tbl_n);
	seq_printf(m, "table_replaced=%lld\n", atomic64_read(&st_replaced));
	seq_printf(m, "table_freed=%lld\n", atomic64_read(&st_rec_freed));
	seq_printf(m, "noise_allocs=%lld\n", atomic64_read(&st_tmp_alloc));
	seq_printf(m, "noise_frees=%lld\n", atomic64_read(&st_tmp_free));
	seq_printf(m, "hz=%d\n", HZ);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static void *obj_start(struct seq_file *m, loff_t *pos)
{
	if (*pos == 0)
		seq_puts(m, "# kind addr slab_page_addr fields\n");
	return *pos < gt_n + tbl_n ? pos : NULL;
}

static void *obj_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return *pos < gt_n + tbl_n ? pos : NULL;
}

static void obj_stop(struct seq_file *m, void *v)
{
}

static int obj_show(struct seq_file *m, void *v)
{
	loff_t i = *(loff_t *)v;
	struct kmem_cache *s = KC_KMALLOC_CACHE(sizeof(struct churn_conn));

	if (i < gt_n) {
		void *p = (void *)(gt[i].x ^ CHURN_GT_XOR);

		seq_printf(m, "leak 0x%px 0x%px seq=%u phase=%s fn=%s\n", p, (void *)KC_SLAB_BASE(p, s),
			   gt[i].seq, gt[i].slow ? "slow" : "bulk",
			   gt[i].fn ? "churn_sess_add" : "churn_conn_add");
	} else {
		struct churn_rec *r = rcu_dereference_protected(tbl[i - gt_n], 1);

		seq_printf(m, "table 0x%px 0x%px id=%u gen=%u\n", r, (void *)KC_SLAB_BASE(r, s),
			   r->id, r->gen);
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
		churn_start();
	else if (!strncmp(buf, "stop", 4))
		churn_stop();
	else
		return -EINVAL;
	return len;
}

static const struct file_operations control_fops = {
	.owner = THIS_MODULE, .write = control_write, .llseek = noop_llseek,
};

static void free_all(void)
{
	unsigned int i;

	for (i = 0; i < tbl_n; i++)
		kfree(rcu_dereference_protected(tbl[i], 1));
	for (i = 0; i < gt_n; i++)
		kfree((void *)(gt[i].x ^ CHURN_GT_XOR));
	vfree(tbl);
	vfree(gt);
}

static int __init churn_init(void)
{
	int ret;

	fmode = !strcmp(free_mode, "call_rcu") ? FREE_CALL_RCU :
		!strcmp(free_mode, "kfree_rcu") ? FREE_KFREE_RCU : FREE_KFREE;
	gt_cap = bulk + (leak2 ? bulk2 : 0) + max_slow;
	gt = vzalloc(array_size(gt_cap, sizeof(*gt)));
	tbl = vzalloc(array_size(max(table_n, 1U), sizeof(*tbl)));
	if (!gt || !tbl) {
		vfree(gt);
		vfree(tbl);
		return -ENOMEM;
	}
	ret = churn_table_fill(table_n);
	if (!ret)
		ret = churn_bulk_leak();
	if (ret) {
		free_all();
		return ret;
	}
	dir = debugfs_create_dir("churn", NULL);
	debugfs_create_file("info", 0400, dir, NULL, &info_fops);
	debugfs_create_file("objects", 0400, dir, NULL, &obj_fops);
	debugfs_create_file("control", 0200, dir, NULL, &control_fops);
	pr_info("churn: free_mode=%s table=%u leaked=%u leak2=%d\n", free_mode, tbl_n, gt_n, leak2);
	return 0;
}

static void __exit churn_exit(void)
{
	debugfs_remove_recursive(dir);
	churn_stop();
	free_all();
}

module_init(churn_init);
module_exit(churn_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Replace-in-place table, one or two leakers and noise in kmalloc-64 (sysak-memleak tests)");
