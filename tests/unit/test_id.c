/*
 * tests/unit/test_id.c — concept id text and name forms (reader/id.c) and
 * sutra_strerror() coverage (reader/errors.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "sutra/sutra.h"

static void test_id_parse_full_roundtrip(void **state)
{
    (void)state;
    const char *hex = "0123456789abcdef0123456789ABCDEF";
    sutra_id id;
    assert_int_equal(sutra_id_parse(hex, &id), 0);
    assert_int_equal(id.bytes[0], 0x01);
    assert_int_equal(id.bytes[7], 0xef);
    assert_int_equal(id.bytes[15], 0xef);
    char out[SUTRA_ID_HEX_LEN + 1];
    sutra_id_format(&id, out);
    assert_string_equal(out, "0123456789abcdef0123456789abcdef");
}

static void test_id_parse_pads_on_the_left(void **state)
{
    (void)state;
    sutra_id a, b, c;
    assert_int_equal(sutra_id_parse("ab", &a), 0);
    assert_int_equal(sutra_id_parse("00AB", &b), 0);
    assert_int_equal(sutra_id_parse("000000000000000000000000000000ab", &c), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(&a, &c, sizeof(a));
    assert_int_equal(a.bytes[15], 0xab);
    for (int i = 0; i < 15; i++)
        assert_int_equal(a.bytes[i], 0);

    /* An odd digit count puts the first digit in a low nibble. */
    assert_int_equal(sutra_id_parse("123", &a), 0);
    assert_int_equal(a.bytes[14], 0x01);
    assert_int_equal(a.bytes[15], 0x23);

    /* Sutra's services use 16-digit ids: they fill the low 8 bytes. */
    assert_int_equal(sutra_id_parse("fedcba9876543210", &a), 0);
    assert_int_equal(a.bytes[7], 0);
    assert_int_equal(a.bytes[8], 0xfe);
    assert_int_equal(a.bytes[15], 0x10);
    char out[SUTRA_ID_HEX_LEN + 1];
    sutra_id_format(&a, out);
    assert_string_equal(out, "0000000000000000fedcba9876543210");
}

static void test_id_parse_rejects_bad_input(void **state)
{
    (void)state;
    sutra_id id;
    memset(&id, 0x5a, sizeof(id));
    sutra_id before = id;
    assert_int_equal(sutra_id_parse(NULL, &id), SUTRA_EINVAL);
    assert_int_equal(sutra_id_parse("", &id), SUTRA_EINVAL);
    assert_int_equal(sutra_id_parse("0123456789abcdef0123456789abcdef0", &id),
                     SUTRA_EINVAL); /* 33 digits */
    assert_int_equal(sutra_id_parse("12g4", &id), SUTRA_EINVAL);
    assert_int_equal(sutra_id_parse(" 12", &id), SUTRA_EINVAL);
    assert_int_equal(sutra_id_parse("0x12", &id), SUTRA_EINVAL);
    assert_int_equal(sutra_id_parse("ab", NULL), SUTRA_EINVAL);
    /* Out-parameters are written only on success. */
    assert_memory_equal(&id, &before, sizeof(id));
}

static void test_id_from_name_is_xxh3_128_big_endian(void **state)
{
    (void)state;
    const char *name = "photosynthesis";
    sutra_id id;
    sutra_id_from_name(name, strlen(name), &id);
    XXH128_hash_t h = XXH3_128bits(name, strlen(name));
    for (int i = 0; i < 8; i++) {
        assert_int_equal(id.bytes[i], (uint8_t)(h.high64 >> (56 - 8 * i)));
        assert_int_equal(id.bytes[8 + i], (uint8_t)(h.low64 >> (56 - 8 * i)));
    }
    sutra_id again, other;
    sutra_id_from_name(name, strlen(name), &again);
    sutra_id_from_name("chlorophyll", 11, &other);
    assert_memory_equal(&id, &again, sizeof(id));
    assert_memory_not_equal(&id, &other, sizeof(id));
    /* The empty name is a valid name. */
    sutra_id empty;
    sutra_id_from_name(NULL, 0, &empty);
    XXH128_hash_t e = XXH3_128bits("", 0);
    assert_int_equal(empty.bytes[0], (uint8_t)(e.high64 >> 56));
}

static void test_strerror_covers_every_code(void **state)
{
    (void)state;
    for (int code = SUTRA_ERROR_MIN; code <= 0; code++) {
        const char *text = sutra_strerror(code);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, "unknown Sutra error");
    }
    assert_string_equal(sutra_strerror(SUTRA_EFORKED),
                        "client created before fork(); create clients after forking");
    assert_string_equal(sutra_strerror(-1000), "unknown Sutra error");
    assert_string_equal(sutra_strerror(ENOENT), "No such file or directory");
    assert_non_null(sutra_strerror(99999));
    assert_non_null(sutra_strerror(-2147483647 - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_parse_full_roundtrip),
        cmocka_unit_test(test_id_parse_pads_on_the_left),
        cmocka_unit_test(test_id_parse_rejects_bad_input),
        cmocka_unit_test(test_id_from_name_is_xxh3_128_big_endian),
        cmocka_unit_test(test_strerror_covers_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
