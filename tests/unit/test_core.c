/* test_core.c - errors, buffers, encodings, masking, config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/rand.h"

static void test_every_error_has_a_stable_name(void **state)
{
    (void)state;
    assert_string_equal(gg_errname(GG_EFULL), "efull");
    assert_string_equal(gg_errname(GG_ECONFLICT), "econflict");
    assert_string_equal(gg_errname((gg_err)-999), "eunknown");
    assert_string_equal(gg_strerror(GG_OK), "success");
}

static void test_buf_refuses_growth_past_its_maximum(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(10);
    assert_int_equal(gg_buf_append(&b, "0123456789", 10), GG_OK);
    assert_int_equal(gg_buf_append(&b, "x", 1), GG_ETOOBIG);
    assert_int_equal(b.len, 10);
    gg_buf_free(&b);
}

static void test_reader_rejects_truncation_without_moving(void **state)
{
    (void)state;
    gg_buf b = GG_BUF_INIT(0);
    uint64_t v64;
    uint32_t v32;
    char s[8];
    assert_int_equal(gg_buf_put_u64(&b, 0x0102030405060708ull), GG_OK);
    assert_int_equal(gg_buf_put_str16(&b, "hello"), GG_OK);
    gg_rd r = gg_rd_make(b.data, b.len);
    assert_int_equal(gg_rd_u64(&r, &v64), GG_OK);
    assert_true(v64 == 0x0102030405060708ull);
    assert_int_equal(gg_rd_str16(&r, s, 5), GG_EPROTO); /* does not fit with NUL */
    assert_int_equal(gg_rd_str16(&r, s, sizeof s), GG_OK);
    assert_string_equal(s, "hello");
    assert_int_equal(gg_rd_u32(&r, &v32), GG_EPROTO);
    assert_int_equal(gg_rd_left(&r), 0);
    gg_buf_free(&b);
}

static void test_hex_and_base64url_roundtrip_and_reject_garbage(void **state)
{
    (void)state;
    uint8_t in[37], out[64];
    char txt[128];
    size_t n;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof in; len++) {
        size_t k = gg_b64url_encode(in, len, txt);
        assert_int_equal(gg_b64url_decode(txt, k, out, sizeof out, &n), GG_OK);
        assert_int_equal(n, len);
        assert_memory_equal(in, out, len);
    }
    assert_int_equal(gg_b64url_decode("ab+c", 4, out, sizeof out, &n), GG_EINVAL);
    assert_int_equal(gg_b64url_decode("abcde", 5, out, sizeof out, &n), GG_EINVAL);
    assert_int_equal(gg_b64url_decode("AAAAAAAA", 8, out, 3, &n), GG_ETOOBIG);
    gg_hex(in, 4, txt);
    assert_string_equal(txt, "0b30557a");
    assert_int_equal(gg_unhex("0b30557a", out, 4), GG_OK);
    assert_memory_equal(in, out, 4);
    assert_int_equal(gg_unhex("0b30557", out, 4), GG_EINVAL);
    assert_int_equal(gg_unhex("0b30557g", out, 4), GG_EINVAL);
}

static void test_masking_hides_personal_data(void **state)
{
    (void)state;
    char o[128];
    assert_string_equal(gg_mask_name("张三丰", o, sizeof o), "张**");
    assert_string_equal(gg_mask_name("李", o, sizeof o), "李*");
    assert_string_equal(gg_mask_phone("13812345678", o, sizeof o), "138****5678");
    assert_string_equal(gg_mask_phone("123", o, sizeof o), "***");
    assert_string_equal(gg_mask_id_no("320102199001011234", o, sizeof o), "320102********1234");
    assert_string_equal(gg_mask_address("南京市玄武区中山路12号3栋401室", o, sizeof o), "南京市玄武区****");
    assert_null(strstr(gg_mask_address("江宁县东山街8号", o, sizeof o), "8"));
    /* A tiny output buffer truncates safely. */
    assert_string_equal(gg_mask_name("张三丰", o, 3), "");
}

static void test_clock_offset_moves_wall_time_only(void **state)
{
    (void)state;
    int64_t a = gg_now_ms();
    gg_clock_set_offset_ms(3600 * 1000);
    int64_t b = gg_now_ms();
    gg_clock_set_offset_ms(0);
    assert_true(b - a >= 3600 * 1000 && b - a < 3600 * 1000 + 5000);
    assert_true(gg_mono_us() > 0);
}

static void test_config_parses_types_defaults_and_paths(void **state)
{
    (void)state;
    gg_config *c = NULL;
    char err[256];
    const char *text = "# comment\n[site]\nrole = utility\n\n[utility]\nworkers = 8\n"
                       "marketing_db = m.db\n[channel]\ntls12 = yes\naddress = \"127.0.0.1:9\"\n";
    assert_int_equal(gg_config_parse(text, "/srv/gg", &c, err, sizeof err), GG_OK);
    assert_int_equal(gg_config_int(c, "utility.workers"), 8);
    assert_string_equal(gg_config_str(c, "utility.marketing_db"), "/srv/gg/m.db");
    assert_string_equal(gg_config_str(c, "store.path"), "/srv/gg/store.db");
    assert_string_equal(gg_config_str(c, "channel.address"), "127.0.0.1:9");
    assert_string_equal(gg_config_str(c, "site.name"), "utility");
    assert_true(gg_config_bool(c, "channel.tls12"));
    assert_int_equal(gg_config_int(c, "http.request_timeout_ms"), 5000);
    assert_true(gg_config_is_set(c, "utility.workers"));
    assert_false(gg_config_is_set(c, "store.lease_ms"));
    gg_config_free(c);
}

static void test_config_errors_name_line_and_key(void **state)
{
    (void)state;
    gg_config *c = NULL;
    char err[256];
    assert_int_equal(gg_config_parse("[site]\nrole = portal\n\n[utility]\nworkers = 0\n", "/", &c, err,
                                     sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "line 5"));
    assert_non_null(strstr(err, "utility.workers"));
    assert_int_equal(gg_config_parse("[site]\nrole = portal\nfoo = 1\n", "/", &c, err, sizeof err),
                     GG_ECONFIG);
    assert_non_null(strstr(err, "unknown key site.foo"));
    assert_int_equal(gg_config_parse("[site]\nrole = both\n", "/", &c, err, sizeof err), GG_ECONFIG);
    assert_int_equal(gg_config_parse("[utility]\nworkers = 2\n", "/", &c, err, sizeof err), GG_ECONFIG);
    assert_non_null(strstr(err, "site.role is required"));
    assert_int_equal(gg_config_parse("[site\nrole = portal\n", "/", &c, err, sizeof err), GG_ECONFIG);
    assert_int_equal(gg_config_parse("role = portal\n", "/", &c, err, sizeof err), GG_ECONFIG);
    assert_int_equal(gg_config_parse("[site]\nrole\n", "/", &c, err, sizeof err), GG_ECONFIG);
    assert_int_equal(gg_config_parse("[site]\nrole=portal\n[utility]\nworkers = 4x\n", "/", &c, err,
                                     sizeof err), GG_ECONFIG);
    assert_null(c);
    assert_int_equal(gg_config_load("/nonexistent/gg.conf", &c, err, sizeof err), GG_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error_has_a_stable_name),
        cmocka_unit_test(test_buf_refuses_growth_past_its_maximum),
        cmocka_unit_test(test_reader_rejects_truncation_without_moving),
        cmocka_unit_test(test_hex_and_base64url_roundtrip_and_reject_garbage),
        cmocka_unit_test(test_masking_hides_personal_data),
        cmocka_unit_test(test_clock_offset_moves_wall_time_only),
        cmocka_unit_test(test_config_parses_types_defaults_and_paths),
        cmocka_unit_test(test_config_errors_name_line_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
