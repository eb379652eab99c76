/* test_kernels.c — take, filter and concat over every type (nested and
 * dictionary-encoded included, slices with bit offsets, nulls), and the
 * stability of the row hash that hash partitioning relies on.
 */
#include "test_ipc_util.h"

#include "arrow/kernels.h"

static void check_take(const struct ArrowSchema *schema, struct ArrowArray *batch,
                       const int64_t *idx, int64_t n) {
  struct ArrowArray out;
  CHECK(pt__array_take(schema, batch, idx, n, &out, &err));
  CHECK(pt_array_validate(schema, &out, &err));
  assert_int_equal(out.length, n);
  assert_int_equal(out.offset, 0);
  for (int64_t k = 0; k < n; k++) assert_rows_equal(schema, &out, k, batch, idx[k], 1);
  out.release(&out);
}

static void test_take_all_types(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 60, 3, &batch);
  int64_t idx[100];
  srand(7);
  for (int k = 0; k < 100; k++) idx[k] = rand() % 60;
  check_take(&schema, &batch, idx, 100);
  check_take(&schema, &batch, idx, 0);
  int64_t rev[60];
  for (int k = 0; k < 60; k++) rev[k] = 59 - k;
  check_take(&schema, &batch, rev, 60);
  /* Children taken alone (not a struct). */
  for (int64_t c = 0; c < schema.n_children; c++) {
    struct ArrowArray col;
    CHECK(pt__array_take(schema.children[c], batch.children[c], idx, 17, &col, &err));
    CHECK(pt_array_validate(schema.children[c], &col, &err));
    col.release(&col);
  }
  batch.release(&batch);
  schema.release(&schema);
}

/* Slices at offsets that are not multiples of 8: bitmaps and bools read at
 * bit offsets, offsets buffers at a distance. */
static void test_take_slices(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 80, 5, &batch);
  for (int64_t off = 1; off < 12; off += 3) {
    struct ArrowArray slice;
    CHECK(pt_array_slice(&batch, off, 50, &slice, &err));
    int64_t idx[70];
    for (int k = 0; k < 70; k++) idx[k] = (k * 13 + off) % 50;
    check_take(&schema, &slice, idx, 70);
    slice.release(&slice);
  }
  batch.release(&batch);
  schema.release(&schema);
}

static void test_filter(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch, slice;
  make_all_batch(&schema, 70, 1, &batch);
  CHECK(pt_array_slice(&batch, 5, 61, &slice, &err));
  uint8_t keep[8] = {0};
  int64_t expect[61], n = 0;
  for (int64_t i = 0; i < 61; i++)
    if (i % 3 != 1) {
      pt__bit_set(keep, i, 1);
      expect[n++] = i;
    }
  struct ArrowArray out;
  CHECK(pt__array_filter(&schema, &slice, keep, &out, &err));
  CHECK(pt_array_validate(&schema, &out, &err));
  assert_int_equal(out.length, n);
  for (int64_t k = 0; k < n; k++) assert_rows_equal(&schema, &out, k, &slice, expect[k], 1);
  out.release(&out);
  /* Nothing kept. */
  memset(keep, 0, sizeof keep);
  CHECK(pt__array_filter(&schema, &slice, keep, &out, &err));
  CHECK(pt_array_validate(&schema, &out, &err));
  assert_int_equal(out.length, 0);
  out.release(&out);
  slice.release(&slice);
  batch.release(&batch);
  schema.release(&schema);
}

static void test_concat(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch, a, b;
  make_all_batch(&schema, 40, 2, &batch);
  /* Slices of one batch share its dictionaries. */
  CHECK(pt_array_slice(&batch, 0, 13, &a, &err));
  CHECK(pt_array_slice(&batch, 13, 27, &b, &err));
  const struct ArrowArray *parts[] = {&a, &b};
  struct ArrowArray out;
  CHECK(pt__array_concat(&schema, parts, 2, &out, &err));
  CHECK(pt_array_validate(&schema, &out, &err));
  assert_batches_equal(&schema, &out, &batch);
  out.release(&out);
  /* Separately built batches have their own dictionaries. */
  struct ArrowArray other;
  make_all_batch(&schema, 5, 9, &other);
  const struct ArrowArray *mixed[] = {&batch, &other};
  pt_error err = {0};
  assert_int_equal(pt__array_concat(&schema, mixed, 2, &out, &err), PT_ENOTSUP);
  assert_string_equal(err.message,
                      "cannot put rows with different dictionaries into one array");
  other.release(&other);
  a.release(&a);
  b.release(&b);
  batch.release(&batch);
  schema.release(&schema);
}

static int has_dictionary(const struct ArrowSchema *s) {
  if (s->dictionary) return 1;
  for (int64_t i = 0; i < s->n_children; i++)
    if (has_dictionary(s->children[i])) return 1;
  return 0;
}

/* Ranges of two batches with different dictionaries, column by column:
 * without dictionaries below, every value as in its source; with
 * PT__CONCAT_NO_DICTIONARIES a dictionary-encoded column's indices as they
 * were and no dictionary (the caller attaches one). */
static void test_concat_ranges(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray a, b, sliced;
  make_all_batch(&schema, 40, 2, &a);
  make_all_batch(&schema, 30, 9, &b);
  CHECK(pt_array_slice(&b, 3, 20, &sliced, &err)); /* views at an offset */
  const int64_t starts[] = {5, 7}, lengths[] = {11, 9};
  for (int64_t c = 0; c < schema.n_children; c++) {
    const struct ArrowSchema *cs = schema.children[c];
    const struct ArrowArray *parts[] = {a.children[c], sliced.children[c]};
    struct ArrowArray out;
    if (!has_dictionary(cs)) {
      for (int flags = 0; flags <= PT__CONCAT_NO_DICTIONARIES; flags++) {
        CHECK(pt__array_concat_ranges(cs, parts, starts, lengths, 2, flags, &out, &err));
        CHECK(pt_array_validate(cs, &out, &err));
        assert_int_equal(out.length, 20);
        pt__view vo, va, vb;
        CHECK(pt__view_init(&vo, cs, &out, &err));
        CHECK(pt__view_init(&va, cs, parts[0], &err));
        CHECK(pt__view_init(&vb, cs, parts[1], &err));
        char why[256] = "";
        if (!views_equal(&vo, 0, &va, 5, 11, why, sizeof why) ||
            !views_equal(&vo, 11, &vb, 7, 9, why, sizeof why))
          fail_msg("column %s: %s", cs->name, why);
        pt__view_reset(&vo);
        pt__view_reset(&va);
        pt__view_reset(&vb);
        out.release(&out);
      }
    } else if (cs->dictionary) {
      pt_error err = {0};
      assert_int_equal(pt__array_concat_ranges(cs, parts, starts, lengths, 2, 0, &out, &err),
                       PT_ENOTSUP);
      CHECK(pt__array_concat_ranges(cs, parts, starts, lengths, 2, PT__CONCAT_NO_DICTIONARIES,
                                    &out, &err));
      assert_null(out.dictionary->release);
      pt_type t;
      CHECK(pt_type_parse(cs, &t, &err));
      int64_t w = pt__type_bit_width(&t) / 8;
      const uint8_t *o = out.buffers[1];
      for (int64_t k = 0; k < 20; k++) {
        const struct ArrowArray *p = k < 11 ? parts[0] : parts[1];
        int64_t row = p->offset + (k < 11 ? 5 + k : 7 + k - 11);
        int valid = !p->buffers[0] || pt__bit_get(p->buffers[0], row);
        assert_int_equal(!out.buffers[0] || pt__bit_get(out.buffers[0], k), valid);
        if (valid)
          assert_memory_equal(o + k * w, (const uint8_t *)p->buffers[1] + row * w, (size_t)w);
      }
      out.release(&out);
    }
  }
  pt_error err = {0};
  struct ArrowArray out;
  const struct ArrowArray *parts[] = {&a, &sliced};
  const int64_t bad[] = {35, 0}, len[] = {6, 1};
  assert_int_equal(pt__array_concat_ranges(&schema, parts, bad, len, 2, 0, &out, &err),
                   PT_ERANGE);
  assert_string_equal(err.message, "concat: rows [35, 41) of array 0 are out of range of its 40 "
                                   "rows");
  sliced.release(&sliced);
  b.release(&b);
  a.release(&a);
  schema.release(&schema);
}

static void test_take_errors(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch, out;
  make_all_batch(&schema, 10, 2, &batch);
  int64_t idx[] = {0, 10};
  pt_error err = {0};
  assert_int_equal(pt__array_take(&schema, &batch, idx, 2, &out, &err), PT_ERANGE);
  assert_string_equal(err.message, "take: index 10 (position 1) is out of range of 10 rows");
  assert_null(out.release);
  /* Every allocation failure is reported and leaks nothing. */
  int64_t good[] = {3, 1, 4, 1, 5, 9};
  int failures = 0;
  for (int64_t k = 0; k < 400; k++) {
    pt__alloc_fail_after(k);
    int rc = pt__array_take(&schema, &batch, good, 6, &out, NULL);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) {
      out.release(&out);
      break;
    }
    assert_int_equal(rc, PT_ENOMEM);
    failures++;
  }
  assert_true(failures > 10);
  batch.release(&batch);
  schema.release(&schema);
}

static void test_hash(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray a, b, slice;
  make_all_batch(&schema, 50, 4, &a);
  make_all_batch(&schema, 50, 4, &b); /* same values, other buffers and dictionaries */
  int keys[N_ALL_COLUMNS];
  for (int k = 0; k < N_ALL_COLUMNS; k++) keys[k] = k;
  uint64_t ha[50], hb[50], hs[40];
  CHECK(pt__hash_rows(&schema, &a, keys, N_HASHABLE_COLUMNS, ha, &err));
  CHECK(pt__hash_rows(&schema, &b, keys, N_HASHABLE_COLUMNS, hb, &err));
  assert_memory_equal(ha, hb, sizeof ha);
  /* A union key is refused with the column, its type and the operator. */
  pt_error herr;
  assert_int_equal(pt__hash_rows(&schema, &a, keys, N_ALL_COLUMNS, ha, &herr), PT_ENOTSUP);
  assert_string_equal(herr.message,
                      "hash partitioning: key column 'su' has type sparse_union<i: int32=2, s: "
                      "utf8=9>, which has no hash (unions do not); partition by other columns");
  CHECK(pt_array_slice(&a, 7, 40, &slice, &err));
  CHECK(pt__hash_rows(&schema, &slice, keys, N_HASHABLE_COLUMNS, hs, &err));
  assert_memory_equal(hs, ha + 7, sizeof hs);
  /* Each column alone: a taken copy hashes like the original rows. */
  int64_t idx[20];
  for (int k = 0; k < 20; k++) idx[k] = (k * 7) % 50;
  struct ArrowArray taken;
  CHECK(pt__array_take(&schema, &a, idx, 20, &taken, &err));
  for (int c = 0; c < N_HASHABLE_COLUMNS; c++) {
    uint64_t h1[50], h2[20];
    CHECK(pt__hash_rows(&schema, &a, &c, 1, h1, &err));
    CHECK(pt__hash_rows(&schema, &taken, &c, 1, h2, &err));
    for (int k = 0; k < 20; k++) assert_int_equal(h2[k], h1[idx[k]]);
  }
  /* Distinct int64 values spread: not all equal. */
  int c8 = 8;
  uint64_t h8[50];
  CHECK(pt__hash_rows(&schema, &a, &c8, 1, h8, &err));
  int distinct = 0;
  for (int k = 1; k < 50; k++) distinct += h8[k] != h8[0];
  assert_true(distinct > 30);
  /* A fixed value: hashes must not change between releases (shuffle files
   * of one job are written by processes of one build, but tests pin it). */
  struct ArrowSchema s1;
  schema_node(&s1, "+s", "", 1);
  schema_node(s1.children[0], "l", "k", 0);
  pt_builder *bld;
  CHECK(pt_builder_new(&s1, &bld, &err));
  OK(pt_builder_append_int(pt_builder_child(bld, 0), 42));
  OK(pt_builder_append_row(bld));
  OK(pt_builder_append_null(bld, 1));
  struct ArrowArray one;
  CHECK(pt_builder_finish(bld, &one, &err));
  pt_builder_free(bld);
  uint64_t h42[2];
  int zero = 0;
  CHECK(pt__hash_rows(&s1, &one, &zero, 1, h42, &err));
  assert_int_equal(h42[0], UINT64_C(0xbed7fa94e99f9082));
  assert_int_equal(h42[1], UINT64_C(0xc0c3bd4c2dc92e36));
  one.release(&one);
  s1.release(&s1);
  taken.release(&taken);
  slice.release(&slice);
  a.release(&a);
  b.release(&b);
  schema.release(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_take_all_types), cmocka_unit_test(test_take_slices),
      cmocka_unit_test(test_filter),         cmocka_unit_test(test_concat),
      cmocka_unit_test(test_concat_ranges),
      cmocka_unit_test(test_take_errors),    cmocka_unit_test(test_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
