/*
 * test_proxy_timer.c - mtls-proxy's deadline heap (examples/mtls-proxy/
 * timer.c), against a plain reference: random sets, moves and deletes,
 * after each of which the earliest due timer must be the reference's
 * minimum, and draining by time must give every timer once, in order.
 */
#include "common.h"

#include "../examples/mtls-proxy/timer.c"

#define N 500

static struct pxy_timer tm[N];
static int live[N];
static double ref[N];

static double ref_min(void)
{
	double m = -1;

	for (int i = 0; i < N; i++)
		if (live[i] && (m < 0 || ref[i] < m))
			m = ref[i];
	return m;
}

static void check_min(void)
{
	double m = ref_min();
	struct pxy_timer *t = pxy_timer_due(1e12);

	if (m < 0) {
		assert_null(t);
		assert_true(pxy_timer_next(0) < 0);
		return;
	}
	assert_non_null(t);
	assert_true(t->when == m);
	assert_null(pxy_timer_due(m - 0.5)); /* nothing is due before it */
	assert_true(pxy_timer_next(m - 2) == 2);
}

static void test_random_ops(void **state)
{
	unsigned seed = 12345;

	(void)state;
	for (int step = 0; step < 20000; step++) {
		int i = (int)(rand_r(&seed) % N);
		int op = (int)(rand_r(&seed) % 3);
		double when = (double)(rand_r(&seed) % 1000) + 1;

		if (op < 2) { /* set or move, earlier or later */
			assert_int_equal(pxy_timer_set(&tm[i], when), 0);
			live[i] = 1;
			ref[i] = when;
		} else {
			pxy_timer_del(&tm[i]);
			pxy_timer_del(&tm[i]); /* twice: a no-op */
			live[i] = 0;
			assert_int_equal(tm[i].slot, 0);
		}
		check_min();
	}
	/* Drain in time order: each due timer deleted by its owner. */
	double last = 0;
	size_t n_live = 0, n_seen = 0;
	for (int i = 0; i < N; i++)
		n_live += (size_t)live[i];
	for (double t = 0; t <= 1001; t += 1) {
		struct pxy_timer *d;

		while ((d = pxy_timer_due(t)) != NULL) {
			assert_true(d->when <= t);
			assert_true(d->when >= last);
			last = d->when;
			live[d - tm] = 0;
			pxy_timer_del(d);
			n_seen++;
		}
	}
	assert_int_equal(n_seen, n_live);
	assert_null(pxy_timer_due(1e12));
	pxy_timer_free();
}

/* An idle timer pushed later without being re-keyed comes due at its old
 * time; the owner re-keys it, and it is not due again until the new one. */
static void test_lazy_rekey(void **state)
{
	struct pxy_timer a = {0}, b = {0};

	(void)state;
	assert_int_equal(pxy_timer_set(&a, 10), 0);
	assert_int_equal(pxy_timer_set(&b, 20), 0);
	assert_ptr_equal(pxy_timer_due(10), &a);
	assert_int_equal(pxy_timer_set(&a, 30), 0); /* re-key: later */
	assert_null(pxy_timer_due(15));
	assert_ptr_equal(pxy_timer_due(20), &b);
	pxy_timer_del(&b);
	assert_ptr_equal(pxy_timer_due(30), &a);
	assert_int_equal(pxy_timer_set(&a, 5), 0); /* earlier */
	assert_ptr_equal(pxy_timer_due(5), &a);
	pxy_timer_del(&a);
	assert_null(pxy_timer_due(1e12));
	pxy_timer_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops),
		cmocka_unit_test(test_lazy_rekey),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
