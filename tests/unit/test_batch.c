/*
 * test_batch.c - batch builders, the wire layout, and batches over a real
 * ZeroMQ inproc PUSH/PULL pair (what stages use), including rejection of a
 * malformed payload and high-water-mark backpressure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "batch.h"
#include "error.h"
#include "transport.h"

static void fill(sl_builder *b, int n)
{
    for (int i = 0; i < n; i++) {
        sl_wbuf w = {0};
        sl_mp_write_map(&w, 1);
        sl_mp_write_cstr(&w, "n");
        sl_mp_write_int(&w, i * 1000); /* varying sizes */
        assert_int_equal(sl_builder_append(b, w.data, w.len, 1), 0);
        sl_wbuf_fini(&w);
    }
}

static void check_events(const sl_batch *v, int n)
{
    assert_int_equal(v->count, n);
    for (int i = 0; i < n; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(v, (uint32_t)i, &len), *p = ev;
        assert_int_equal(sl_mp_map_find(&p, ev + len, "n", 1), 1);
        sl_mp_val x;
        assert_int_equal(sl_mp_read(&p, ev + len, &x), 0);
        assert_true(x.v.u == (uint64_t)i * 1000);
        assert_ptr_equal(p, ev + len); /* the event ends exactly where its offset says */
    }
}

static void test_builder_view_and_reuse(void **st)
{
    sl_builder b;
    sl_builder_init(&b);
    fill(&b, 3000); /* grows the offsets array past its first size */
    sl_batch v;
    sl_builder_view(&b, &v, 42);
    check_events(&v, 3000);
    assert_true(v.watermark == 42);
    uint8_t *mem = b.data.data;
    sl_builder_clear(&b);
    assert_int_equal(b.count, 0);
    fill(&b, 10);
    assert_ptr_equal(b.data.data, mem); /* memory is reused */
    sl_builder_fini(&b);
}

static void test_wire_roundtrip_and_corruption(void **st)
{
    sl_builder b;
    sl_builder_init(&b);
    fill(&b, 77);
    uint8_t *payload;
    size_t len;
    sl_wire_hdr h = {.magic = SL_WIRE_MAGIC, .kind = SL_BATCH_DATA, .count = 77};
    assert_int_equal(sl_builder_detach(&b, &payload, &len, &h.events_len), 0);
    assert_int_equal(b.count, 0);
    assert_int_equal(len % 4, 0);
    sl_batch v;
    assert_int_equal(sl_batch_from_wire(&h, payload, len, &v), 0);
    check_events(&v, 77);
    /* a count that does not match the payload */
    sl_wire_hdr bad = h;
    bad.count = 78;
    assert_int_equal(sl_batch_from_wire(&bad, payload, len, &v), SL_EPROTO);
    /* an offset pointing past the events */
    uint32_t *ends = (uint32_t *)(void *)(payload + len - 4 * 77);
    ends[5] = (uint32_t)h.events_len + 100;
    assert_int_equal(sl_batch_from_wire(&h, payload, len, &v), SL_EPROTO);
    free(payload);
    sl_builder_fini(&b);
}

static void test_transport_inproc(void **st)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
    assert_int_equal(zmq_bind(pull, "inproc://t"), 0);
    assert_int_equal(zmq_connect(push, "inproc://t"), 0);
    sl_builder b;
    sl_builder_init(&b);
    fill(&b, 500);
    assert_int_equal(sl_transport_send_batch(push, 3, &b, 12345, 0, NULL), 0);
    assert_int_equal(sl_transport_send_control(push, 3, SL_BATCH_EOS, INT64_MAX, 0, 0, 0), 0);
    sl_rx rx;
    assert_int_equal(sl_transport_recv(pull, &rx, 0), 0);
    assert_int_equal(rx.hdr.kind, SL_BATCH_DATA);
    assert_int_equal(rx.hdr.slot, 3);
    assert_true(rx.batch.watermark == 12345);
    check_events(&rx.batch, 500);
    sl_rx_close(&rx);
    assert_int_equal(sl_transport_recv(pull, &rx, 0), 0);
    assert_int_equal(rx.hdr.kind, SL_BATCH_EOS);
    sl_rx_close(&rx);
    assert_int_equal(sl_transport_recv(pull, &rx, ZMQ_DONTWAIT), -EAGAIN);
    /* garbage from a peer is rejected, not delivered */
    assert_int_equal(zmq_send(push, "junk", 4, 0), 4);
    assert_int_equal(sl_transport_recv(pull, &rx, 0), SL_EPROTO);
    sl_builder_fini(&b);
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

static void test_high_water_mark_blocks_sender(void **st)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = 2;
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    assert_int_equal(zmq_bind(pull, "inproc://hwm"), 0);
    assert_int_equal(zmq_connect(push, "inproc://hwm"), 0);
    /* with nobody reading, a non-blocking send must eventually be refused */
    int sent = 0, refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
        sl_wire_hdr h = {.magic = SL_WIRE_MAGIC, .kind = SL_BATCH_EOS};
        if (zmq_send(push, &h, sizeof h, ZMQ_DONTWAIT) < 0) {
            assert_int_equal(errno, EAGAIN);
            refused = 1;
        } else {
            sent++;
        }
    }
    assert_true(refused);
    assert_true(sent <= 2 * hwm + 2); /* bounded queue: memory cannot grow without bound */
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builder_view_and_reuse),
        cmocka_unit_test(test_wire_roundtrip_and_corruption),
        cmocka_unit_test(test_transport_inproc),
        cmocka_unit_test(test_high_water_mark_blocks_sender),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
