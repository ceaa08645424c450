/*
 * tests/sim/test_p2m.c — mem_access settings as Xen keeps them
 * (xen/common/mem_access.c, xen/arch/x86/mm/mem_access.c, spec §2).
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "p2m_internal.h"

static struct p2m *new_p2m(uint64_t n)
{
    struct p2m *p = NULL;
    int rc = p2m_create(&p, n);
    if (rc < 0)
        cr_assert_fail("TEST ERROR (set-up): p2m_create: %d", rc);
    return p;
}

/* Xen's violation table, row by row (hvm_hap_nested_page_fault). */
Test(p2m, violation_table_is_xens)
{
    struct { enum p2m_access a; unsigned violates; } rows[] = {
        {P2M_ACCESS_N, 7}, {P2M_ACCESS_N2RWX, 7}, {P2M_ACCESS_R, P2M_W | P2M_X},
        {P2M_ACCESS_W, P2M_R | P2M_X}, {P2M_ACCESS_X, P2M_R | P2M_W}, {P2M_ACCESS_RX, P2M_W},
        {P2M_ACCESS_RX2RW, P2M_W}, {P2M_ACCESS_WX, P2M_R}, {P2M_ACCESS_RW, P2M_X},
        {P2M_ACCESS_RWX, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        for (unsigned kind = P2M_R; kind <= P2M_X; kind <<= 1)
            cr_expect_eq(p2m_access_violates(rows[i].a, kind), (rows[i].violates & kind) != 0,
                         "access %s, kind %u", p2m_access_name(rows[i].a), kind);
    /* Several kinds at once violate when any one does. */
    cr_expect(p2m_access_violates(P2M_ACCESS_RX, P2M_R | P2M_W));
    cr_expect_not(p2m_access_violates(P2M_ACCESS_RX, P2M_R | P2M_X));
}

/* Every gfn starts rwx with nothing restricted; a range set is read back per gfn. */
Test(p2m, set_and_get_by_range)
{
    struct p2m *p = new_p2m(100);
    enum p2m_access a;
    cr_assert_eq(p2m_get_access(p, 99, &a), 0);
    cr_expect_eq(a, P2M_ACCESS_RWX);
    cr_expect_eq(p2m_restricted_bitmap(p)[0], 0);
    bool lost;
    cr_assert_eq(p2m_set_access(p, 10, 70, P2M_ACCESS_R, &lost), 0);
    cr_expect(lost, "rwx -> r takes rights away");
    for (uint64_t g = 0; g < 100; g++) {
        p2m_get_access(p, g, &a);
        cr_expect_eq(a, g >= 10 && g < 80 ? P2M_ACCESS_R : P2M_ACCESS_RWX, "gfn %lu", (unsigned long)g);
        bool bit = (p2m_restricted_bitmap(p)[g / 64] >> (g % 64)) & 1;
        cr_expect_eq(bit, g >= 10 && g < 80, "restricted bit of gfn %lu", (unsigned long)g);
    }
    cr_assert_eq(p2m_set_access(p, 10, 70, P2M_ACCESS_RW, &lost), 0);
    cr_expect_not(lost, "r -> rw only gives rights");
    cr_assert_eq(p2m_set_access(p, 10, 70, P2M_ACCESS_RWX, NULL), 0);
    cr_expect_eq(p2m_restricted_bitmap(p)[0] | p2m_restricted_bitmap(p)[1], 0);
    p2m_destroy(p);
}

/* Ranges beyond the p2m and unknown access types are refused and change nothing. */
Test(p2m, bad_requests_change_nothing)
{
    struct p2m *p = new_p2m(16);
    cr_expect_eq(p2m_set_access(p, 15, 2, P2M_ACCESS_N, NULL), -EINVAL);
    cr_expect_eq(p2m_set_access(p, 16, 1, P2M_ACCESS_N, NULL), -EINVAL);
    cr_expect_eq(p2m_set_access(p, 1, UINT64_MAX, P2M_ACCESS_N, NULL), -EINVAL);
    cr_expect_eq(p2m_set_access(p, 0, 1, (enum p2m_access)11, NULL), -EINVAL);
    enum p2m_access a;
    cr_expect_eq(p2m_get_access(p, 16, &a), -EINVAL);
    for (uint64_t g = 0; g < 16; g++) {
        p2m_get_access(p, g, &a);
        cr_expect_eq(a, P2M_ACCESS_RWX);
    }
    p2m_destroy(p);
}

/*
 * pfn ~0 sets the default access (nr ignored) and touches no entry; "default"
 * in a later range means the default as it is then (xen-access's sequence).
 */
Test(p2m, default_access)
{
    struct p2m *p = new_p2m(8);
    cr_assert_eq(p2m_set_access(p, ~0ull, 12345, P2M_ACCESS_RX, NULL), 0);
    cr_expect_eq(p2m_default_access(p), P2M_ACCESS_RX);
    enum p2m_access a;
    p2m_get_access(p, 3, &a);
    cr_expect_eq(a, P2M_ACCESS_RWX, "existing entries keep their access");
    cr_assert_eq(p2m_set_access(p, 0, 8, P2M_ACCESS_DEFAULT, NULL), 0);
    p2m_get_access(p, 3, &a);
    cr_expect_eq(a, P2M_ACCESS_RX);
    cr_assert_eq(p2m_set_access(p, ~0ull, 0, P2M_ACCESS_DEFAULT, NULL), 0);
    cr_expect_eq(p2m_default_access(p), P2M_ACCESS_RX, "default of default changes nothing");
    p2m_destroy(p);
}

/* The conversions' starting rights: rx2rw is r-x, n2rwx is nothing (both restricted). */
Test(p2m, conversion_types_rights)
{
    struct p2m *p = new_p2m(4);
    p2m_set_access(p, 0, 1, P2M_ACCESS_RX2RW, NULL);
    p2m_set_access(p, 1, 1, P2M_ACCESS_N2RWX, NULL);
    cr_expect_eq(p2m_rights(p, 0), P2M_R | P2M_X);
    cr_expect_eq(p2m_rights(p, 1), 0);
    cr_expect_eq(p2m_rights(p, 2), P2M_R | P2M_W | P2M_X);
    cr_expect_eq(p2m_restricted_bitmap(p)[0], 3);
    cr_expect_str_eq(p2m_access_name(P2M_ACCESS_N2RWX), "n2rwx");
    cr_expect_null(p2m_access_name((enum p2m_access)42));
    p2m_destroy(p);
}
