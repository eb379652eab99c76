/* test_arrow_arrays.c — arrays of src/arrow: pt__array_* and pt__shared
 * lifetimes, zero-copy slices of foreign arrays (release called exactly
 * once, children moved out), compacting copies with bit offsets, views, and
 * validation with its exact messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arrow/arrow.h"

static void node(struct ArrowSchema *s, const char *format, const char *name, int64_t n) {
  assert_int_equal(pt_schema_init(s, format, name, ARROW_FLAG_NULLABLE, n, NULL), PT_OK);
}

/* ------------------------------------------------------------------------ */
/* A foreign producer: static buffers, a release that counts. */

static int foreign_releases;

static void foreign_child_release(struct ArrowArray *a) {
  for (int64_t i = 0; i < a->n_children; i++)
    if (a->children[i]->release) a->children[i]->release(a->children[i]);
  a->release = NULL;
}

static void foreign_release(struct ArrowArray *a) {
  foreign_child_release(a);
  foreign_releases++;
}

typedef struct foreign_batch {
  struct ArrowArray top, a, tags, tag_items;
  struct ArrowArray *top_children[2], *tags_children[1];
  const void *top_buffers[1], *a_buffers[2], *tags_buffers[2], *item_buffers[3];
  uint8_t a_validity[1];
  int32_t a_values[6];
  int32_t tags_offsets[7];
  int32_t item_offsets[7];
  char item_data[16];
} foreign_batch;

/* struct<a: int32, tags: list<utf8>>, 6 rows:
 *   a    = 1, 2, 3, null, 5, 6
 *   tags = [a, bb], [], [ccc], [d, ee], [], [f]  */
static void foreign_make(foreign_batch *f) {
  memset(f, 0, sizeof *f);
  static const int32_t values[6] = {1, 2, 3, 4, 5, 6};
  static const int32_t tags_offsets[7] = {0, 2, 2, 3, 5, 5, 6};
  static const int32_t item_offsets[7] = {0, 1, 3, 6, 7, 9, 10};
  memcpy(f->a_values, values, sizeof values);
  memcpy(f->tags_offsets, tags_offsets, sizeof tags_offsets);
  memcpy(f->item_offsets, item_offsets, sizeof item_offsets);
  memcpy(f->item_data, "abbcccdeef", 10);
  f->a_validity[0] = 0x37;
  f->item_buffers[0] = NULL;
  f->item_buffers[1] = f->item_offsets;
  f->item_buffers[2] = f->item_data;
  f->tag_items = (struct ArrowArray){6, 0, 0, 3, 0, f->item_buffers, NULL, NULL,
                                     foreign_child_release, NULL};
  f->tags_buffers[1] = f->tags_offsets;
  f->tags_children[0] = &f->tag_items;
  f->tags = (struct ArrowArray){6, 0, 0, 2, 1, f->tags_buffers, f->tags_children, NULL,
                                foreign_child_release, NULL};
  f->a_buffers[0] = f->a_validity;
  f->a_buffers[1] = f->a_values;
  f->a = (struct ArrowArray){6, 1, 0, 2, 0, f->a_buffers, NULL, NULL, foreign_child_release,
                             NULL};
  f->top_children[0] = &f->a;
  f->top_children[1] = &f->tags;
  f->top = (struct ArrowArray){6, 0, 0, 1, 2, f->top_buffers, f->top_children, NULL,
                               foreign_release, NULL};
}

static void foreign_schema(struct ArrowSchema *s) {
  node(s, "+s", "", 2);
  node(s->children[0], "i", "a", 0);
  node(s->children[1], "+l", "tags", 1);
  node(s->children[1]->children[0], "u", "item", 0);
}

/* The tags of row i as "x,y" */
static void tags_text(const pt__view *batch, int64_t i, char *out) {
  const pt__view *tags = &batch->children[1];
  int64_t start, end;
  pt__view_list_range(tags, i, &start, &end);
  out[0] = '\0';
  for (int64_t k = start; k < end; k++) {
    int64_t len;
    const uint8_t *p = pt__view_get_bytes(&tags->children[0], k, &len);
    if (k > start) strcat(out, ",");
    strncat(out, (const char *)p, (size_t)len);
  }
}

/* Checks rows [0, n) of batch against rows [first, first+n) of the foreign
 * batch's contents. */
static void check_rows(const struct ArrowSchema *s, const struct ArrowArray *batch,
                       int64_t first, int64_t n) {
  static const char *const tags[6] = {"a,bb", "", "ccc", "d,ee", "", "f"};
  pt__view v;
  pt_error err;
  assert_int_equal(pt__view_init(&v, s, batch, &err), PT_OK);
  assert_int_equal(pt__view_validate(&v, NULL, NULL, &err), PT_OK);
  assert_int_equal(v.length, n);
  for (int64_t i = 0; i < n; i++) {
    int64_t r = first + i;
    /* Struct children are indexed with the struct's offset added. */
    int64_t j = v.offset + i;
    assert_int_equal(pt__view_is_valid(&v.children[0], j), r != 3);
    if (r != 3) assert_int_equal(pt__view_get_int(&v.children[0], j), r + 1);
    char text[32];
    tags_text(&v, j, text);
    assert_string_equal(text, tags[r]);
  }
  pt__view_reset(&v);
}

/* ------------------------------------------------------------------------ */

static int destroyed;
static void count_destroy(void *data, void *arg) {
  destroyed++;
  assert_ptr_equal(data, &destroyed);
  assert_ptr_equal(arg, (void *)7);
}

static void test_shared_and_array_init(void **state) {
  destroyed = 0;
  pt__shared *sh = pt__shared_new(&destroyed, count_destroy, (void *)7);
  assert_non_null(sh);
  pt__shared_ref(sh);
  pt__shared_unref(sh);
  assert_int_equal(destroyed, 0);

  /* An array holding the region, an owned and a borrowed buffer, a child
   * moved out before release and a dictionary left in. */
  struct ArrowArray a, moved;
  assert_int_equal(pt__array_init(&a, 2, 2, true, NULL), PT_OK);
  assert_true(pt__array_is_ours(&a));
  assert_int_equal(a.n_buffers, 2);
  assert_null(a.buffers[0]);
  assert_null(a.children[0]->release);
  assert_null(a.dictionary->release);
  void *owned = pt__malloc(10);
  static const int borrowed[2] = {1, 2};
  pt__array_set_buffer(&a, 0, owned, true);
  pt__array_set_buffer(&a, 1, borrowed, false);
  pt__array_hold(&a, sh);
  pt__shared_unref(sh); /* the array's reference keeps it */
  assert_int_equal(destroyed, 0);
  assert_int_equal(pt__array_init(a.children[0], 1, 0, false, NULL), PT_OK);
  assert_int_equal(pt__array_init(a.children[1], 1, 0, false, NULL), PT_OK);
  pt__array_set_buffer(a.children[1], 0, pt__malloc(3), true);
  assert_int_equal(pt__array_init(a.dictionary, 0, 0, false, NULL), PT_OK);
  pt__array_move(a.children[1], &moved);
  assert_null(a.children[1]->release);
  struct ArrowArray b;
  pt__array_move(&a, &b); /* release works on the moved struct */
  b.release(&b);
  assert_null(b.release);
  assert_int_equal(destroyed, 1);
  moved.release(&moved);

  assert_false(pt__array_is_ours(NULL));
  foreign_batch f;
  foreign_make(&f);
  assert_false(pt__array_is_ours(&f.top));
  pt_error err;
  assert_int_equal(pt__array_init(&a, -1, 0, false, &err), PT_EINVAL);
  pt__alloc_fail_after(0);
  assert_int_equal(pt__array_init(&a, 1, 1, false, &err), PT_ENOMEM);
  pt__alloc_fail_after(-1);
  assert_null(a.release);
}

static void test_slice_foreign_release_once(void **state) {
  struct ArrowSchema s;
  foreign_schema(&s);
  foreign_batch f;
  foreign_make(&f);
  foreign_releases = 0;
  struct ArrowArray batch = f.top, out;
  pt_error err;
  assert_int_equal(pt_array_slice(&batch, 1, 4, &out, &err), PT_OK);
  assert_true(pt__array_is_ours(&batch));
  assert_int_equal(batch.length, 6);
  assert_int_equal(out.length, 4);
  assert_int_equal(out.offset, 1);
  assert_int_equal(out.null_count, 0); /* no nulls at the top: still none */
  check_rows(&s, &batch, 0, 6);
  check_rows(&s, &out, 1, 4);
  /* A slice of the slice shares the holder; no extra wrapping. */
  struct ArrowArray out2;
  assert_int_equal(pt_array_slice(&out, 2, 2, &out2, &err), PT_OK);
  assert_int_equal(out2.offset, 3);
  check_rows(&s, &out2, 3, 2);
  check_rows(&s, &out, 1, 4);
  batch.release(&batch);
  out.release(&out);
  assert_int_equal(foreign_releases, 0);
  out2.release(&out2);
  assert_int_equal(foreign_releases, 1);

  /* A consumer moves a child out of the slice: it keeps the buffers alive
   * on its own. */
  foreign_make(&f);
  foreign_releases = 0;
  batch = f.top;
  assert_int_equal(pt_array_slice(&batch, 0, 6, &out, &err), PT_OK);
  assert_int_equal(out.null_count, 0);
  struct ArrowArray tags;
  pt__array_move(out.children[1], &tags);
  out.release(&out);
  batch.release(&batch);
  assert_int_equal(foreign_releases, 0);
  pt__view tv;
  assert_int_equal(pt__view_init(&tv, s.children[1], &tags, &err), PT_OK);
  assert_int_equal(pt__view_validate(&tv, NULL, NULL, &err), PT_OK);
  int64_t start, end, len;
  pt__view_list_range(&tv, 3, &start, &end);
  assert_memory_equal(pt__view_get_bytes(&tv.children[0], start + 1, &len), "ee", 2);
  pt__view_reset(&tv);
  tags.release(&tags);
  assert_int_equal(foreign_releases, 1);

  /* Slicing a slice after a child was moved out of it is refused. */
  foreign_make(&f);
  foreign_releases = 0;
  batch = f.top;
  assert_int_equal(pt_array_slice(&batch, 0, 2, &out, &err), PT_OK);
  pt__array_move(out.children[0], &tags);
  assert_int_equal(pt_array_slice(&out, 0, 1, &out2, &err), PT_EINVAL);
  assert_string_equal(err.message, "cannot slice: part of the array was released or moved out");
  tags.release(&tags);
  out.release(&out);
  batch.release(&batch);
  assert_int_equal(foreign_releases, 1);
  s.release(&s);
}

static void test_slice_errors(void **state) {
  foreign_batch f;
  foreign_make(&f);
  foreign_releases = 0;
  struct ArrowArray batch = f.top, out;
  pt_error err;
  assert_int_equal(pt_array_slice(&batch, 4, 3, &out, &err), PT_ERANGE);
  assert_string_equal(err.message, "slice [4, 4+3) is out of range of 6 rows");
  assert_null(out.release);
  assert_int_equal(pt_array_slice(&batch, -1, 1, &out, &err), PT_ERANGE);
  assert_int_equal(pt_array_slice(&batch, 1, INT64_MAX, &out, &err), PT_ERANGE);
  assert_false(pt__array_is_ours(&batch)); /* untouched */
  /* Zero-length slices at either end are fine. */
  assert_int_equal(pt_array_slice(&batch, 6, 0, &out, &err), PT_OK);
  assert_int_equal(out.length, 0);
  out.release(&out);
  batch.release(&batch);
  assert_int_equal(foreign_releases, 1);
  assert_int_equal(pt_array_slice(&batch, 0, 0, &out, &err), PT_EINVAL);
}

static void test_slice_fault_injection(void **state) {
  struct ArrowSchema s;
  foreign_schema(&s);
  int done = 0;
  for (int64_t n = 0; n < 1000 && !done; n++) {
    foreign_batch f;
    foreign_make(&f);
    foreign_releases = 0;
    struct ArrowArray batch = f.top, out, copy;
    pt_error err = {0};
    pt__alloc_fail_after(n);
    int rc = pt_array_slice(&batch, 2, 3, &out, &err);
    if (rc == PT_OK) {
      rc = pt_array_copy(&s, &out, &copy, &err);
      if (rc == PT_OK) {
        done = 1;
        pt__alloc_fail_after(-1);
        check_rows(&s, &copy, 2, 3);
        copy.release(&copy);
      } else {
        assert_null(copy.release);
      }
      out.release(&out);
    } else {
      assert_false(pt__array_is_ours(&batch)); /* failed slices change nothing */
      assert_null(out.release);
    }
    pt__alloc_fail_after(-1);
    if (!done) assert_int_equal(rc, PT_ENOMEM);
    check_rows(&s, &batch, 0, 6);
    batch.release(&batch);
    assert_int_equal(foreign_releases, 1);
  }
  assert_true(done);
  s.release(&s);
}

static void test_copy_compacts(void **state) {
  struct ArrowSchema s;
  foreign_schema(&s);
  foreign_batch f;
  foreign_make(&f);
  struct ArrowArray batch = f.top, out, copy;
  pt_error err;
  assert_int_equal(pt_array_slice(&batch, 1, 4, &out, &err), PT_OK);
  assert_int_equal(pt_array_copy(&s, &out, &copy, &err), PT_OK);
  out.release(&out);
  batch.release(&batch);
  /* Everything is at offset 0 and holds exactly the copied rows. */
  assert_int_equal(copy.offset, 0);
  assert_int_equal(copy.length, 4);
  const struct ArrowArray *a = copy.children[0], *tags = copy.children[1];
  assert_int_equal(a->null_count, 1);
  assert_int_equal(((const uint8_t *)a->buffers[0])[0], 0x0b); /* 1,1,0,1 */
  assert_int_equal(((const int32_t *)a->buffers[1])[0], 2);
  static const int32_t want_offsets[5] = {0, 0, 1, 3, 3};
  assert_memory_equal(tags->buffers[1], want_offsets, sizeof want_offsets);
  const struct ArrowArray *items = tags->children[0];
  assert_int_equal(items->length, 3);
  static const int32_t want_item_offsets[4] = {0, 3, 4, 6};
  assert_memory_equal(items->buffers[1], want_item_offsets, sizeof want_item_offsets);
  assert_memory_equal(items->buffers[2], "cccdee", 6);
  assert_null(items->buffers[0]);
  assert_null(tags->buffers[0]);
  check_rows(&s, &copy, 1, 4);
  copy.release(&copy);
  s.release(&s);
}

/* bool and validity bits at offsets that are not multiples of 8. */
static void test_bit_offsets(void **state) {
  struct ArrowSchema s;
  node(&s, "b", "flag", 0);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  for (int i = 0; i < 37; i++) {
    if (i % 5 == 0) assert_int_equal(pt_builder_append_null(b, 1), PT_OK);
    else assert_int_equal(pt_builder_append_int(b, (i * 7) % 3 == 1), PT_OK);
  }
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(b, &a, NULL), PT_OK);
  pt_builder_free(b);
  for (int64_t off = 0; off < 13; off++) {
    for (int64_t len = 0; off + len <= 37; len += 3) {
      struct ArrowArray sl, copy, copy2;
      assert_int_equal(pt_array_slice(&a, off, len, &sl, NULL), PT_OK);
      assert_int_equal(pt_array_validate(&s, &sl, NULL), PT_OK);
      /* A slice of the slice at a further odd offset, then a copy. */
      int64_t off2 = len > 3 ? 3 : 0;
      assert_int_equal(pt_array_slice(&sl, off2, len - off2, &copy2, NULL), PT_OK);
      assert_int_equal(pt_array_copy(&s, &copy2, &copy, NULL), PT_OK);
      copy2.release(&copy2);
      assert_int_equal(copy.offset, 0);
      assert_int_equal(copy.length, len - off2);
      int64_t nulls = 0;
      for (int64_t i = 0; i < len - off2; i++) {
        int64_t r = off + off2 + i;
        int valid = r % 5 != 0;
        nulls += !valid;
        assert_int_equal(pt_array_is_valid(&s, &sl, off2 + i), valid);
        assert_int_equal(pt_array_is_valid(&s, &copy, i), valid);
        if (valid) assert_int_equal(pt__bit_get(copy.buffers[1], i), (r * 7) % 3 == 1);
      }
      assert_int_equal(copy.null_count, nulls);
      if (nulls == 0) assert_null(copy.buffers[0]);
      /* Bits past the end of the copy are zero. */
      const uint8_t *vals = copy.buffers[1];
      for (int64_t i = len - off2; i < 64; i++) assert_int_equal(pt__bit_get(vals, i), 0);
      assert_int_equal(pt_array_validate(&s, &copy, NULL), PT_OK);
      copy.release(&copy);
      sl.release(&sl);
    }
  }
  a.release(&a);
  s.release(&s);
}

static void test_copy_dictionary_and_fixed_size(void **state) {
  /* struct<d: dictionary<utf8, uint16>, fl: fixed_size_list<int8>[2], n: null> */
  struct ArrowSchema s, d;
  node(&s, "+s", "", 3);
  node(s.children[0], "S", "d", 0);
  node(&d, "u", "", 0);
  assert_int_equal(pt_schema_set_dictionary(s.children[0], &d, NULL), PT_OK);
  node(s.children[1], "+w:2", "fl", 1);
  node(s.children[1]->children[0], "c", "item", 0);
  node(s.children[2], "n", "n", 0);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  pt_builder *dict = pt_builder_dictionary(pt_builder_child(b, 0));
  assert_int_equal(pt_builder_append_bytes(dict, "zero", 4), PT_OK);
  assert_int_equal(pt_builder_append_bytes(dict, "one", 3), PT_OK);
  for (int r = 0; r < 10; r++) {
    assert_int_equal(pt_builder_append_uint(pt_builder_child(b, 0), (uint64_t)(r % 2)), PT_OK);
    pt_builder *fl = pt_builder_child(b, 1);
    assert_int_equal(pt_builder_append_int(pt_builder_child(fl, 0), r), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(fl, 0), -r), PT_OK);
    assert_int_equal(pt_builder_append_row(fl), PT_OK);
    assert_int_equal(pt_builder_append_null(pt_builder_child(b, 2), 1), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray a, sl, copy;
  assert_int_equal(pt_builder_finish(b, &a, NULL), PT_OK);
  pt_builder_free(b);
  assert_int_equal(a.children[2]->n_buffers, 0);
  assert_int_equal(pt_array_slice(&a, 3, 5, &sl, NULL), PT_OK);
  assert_int_equal(pt_array_copy(&s, &sl, &copy, NULL), PT_OK);
  sl.release(&sl);
  a.release(&a);
  pt__view v;
  assert_int_equal(pt__view_init(&v, &s, &copy, NULL), PT_OK);
  assert_int_equal(pt__view_validate(&v, NULL, NULL, NULL), PT_OK);
  assert_int_equal(v.children[0].dictionary->length, 2);
  assert_int_equal(v.children[1].children[0].length, 10);
  assert_int_equal(v.children[2].null_count, 5);
  for (int i = 0; i < 5; i++) {
    int r = 3 + i;
    int64_t len, start, end;
    const uint8_t *p = pt__view_get_bytes(v.children[0].dictionary,
                                          pt__view_dict_index(&v.children[0], i), &len);
    assert_memory_equal(p, r % 2 ? "one" : "zero", (size_t)len);
    pt__view_list_range(&v.children[1], i, &start, &end);
    assert_int_equal(start, 2 * i);
    assert_int_equal(pt__view_get_int(&v.children[1].children[0], start), r);
    assert_int_equal(pt__view_get_int(&v.children[1].children[0], start + 1), -r);
    assert_false(pt__view_is_valid(&v.children[2], i));
  }
  pt__view_reset(&v);
  copy.release(&copy);
  s.release(&s);
}

/* ------------------------------------------------------------------------ */
/* Validation */

static void expect_invalid(const struct ArrowSchema *s, const struct ArrowArray *a, int code,
                           const char *message) {
  pt_error err = {0};
  assert_int_equal(pt_array_validate(s, a, &err), code);
  assert_string_equal(err.message, message);
}

static void test_validate_messages(void **state) {
  struct ArrowSchema s;
  foreign_schema(&s);
  foreign_batch f;

  foreign_make(&f);
  assert_int_equal(pt_array_validate(&s, &f.top, NULL), PT_OK);
  static const int32_t bad_items[7] = {0, 5, 20, 17, 18, 19, 20};
  memcpy(f.item_offsets, bad_items, sizeof bad_items);
  expect_invalid(&s, &f.top, PT_EFORMAT,
                 "column 'tags': child 0: offset 3 (17) is smaller than offset 2 (20)");

  foreign_make(&f);
  f.tags_offsets[6] = 7;
  expect_invalid(&s, &f.top, PT_EFORMAT,
                 "column 'tags': offset 6 (7) is beyond the child's length 6");

  foreign_make(&f);
  f.tags_offsets[0] = -1;
  expect_invalid(&s, &f.top, PT_EFORMAT, "column 'tags': offset 0 (-1) is negative");

  foreign_make(&f);
  f.a.null_count = 2;
  expect_invalid(&s, &f.top, PT_EINVAL,
                 "column 'a': null_count is 2 but the validity bitmap has 1 nulls");

  foreign_make(&f);
  f.a.null_count = 7;
  expect_invalid(&s, &f.top, PT_EINVAL, "column 'a': null_count 7 is larger than the length 6");

  foreign_make(&f);
  f.a.null_count = -1; /* unknown is fine */
  assert_int_equal(pt_array_validate(&s, &f.top, NULL), PT_OK);
  f.a_buffers[0] = NULL;
  f.a.null_count = 1;
  expect_invalid(&s, &f.top, PT_EINVAL,
                 "column 'a': null_count is 1 but there is no validity bitmap");

  foreign_make(&f);
  f.a.length = 5;
  expect_invalid(&s, &f.top, PT_EFORMAT,
                 "column 'a': length 5 is shorter than the 6 rows of its struct (offset 0 + "
                 "length 6)");

  foreign_make(&f);
  f.a_buffers[1] = NULL;
  expect_invalid(&s, &f.top, PT_EINVAL,
                 "column 'a': values buffer (buffer 1) is NULL but 24 bytes are needed");

  foreign_make(&f);
  f.item_buffers[2] = NULL;
  expect_invalid(&s, &f.top, PT_EINVAL,
                 "column 'tags': child 0: data buffer (buffer 2) is NULL but 10 bytes are "
                 "needed");

  foreign_make(&f);
  f.tags.n_buffers = 3;
  expect_invalid(&s, &f.top, PT_EINVAL,
                 "column 'tags': list<utf8> array needs 2 buffers but has 3");

  foreign_make(&f);
  f.tags.n_children = 0;
  expect_invalid(&s, &f.top, PT_EINVAL, "column 'tags': array has 0 children, its schema 1");

  foreign_make(&f);
  f.top.length = -1;
  expect_invalid(&s, &f.top, PT_EINVAL, "length -1 is negative");

  foreign_make(&f);
  f.a.release = NULL;
  expect_invalid(&s, &f.top, PT_EINVAL, "column 'a': array has been released");

  /* Offsets of an empty array are not read; pyarrow may leave them NULL. */
  foreign_make(&f);
  f.top.length = 0;
  f.tags.length = 0;
  f.tags_buffers[1] = NULL;
  f.a.length = 0;
  f.a.null_count = 0;
  assert_int_equal(pt_array_validate(&s, &f.top, NULL), PT_OK);
  s.release(&s);

  /* The null type has no buffers at all. */
  node(&s, "n", "n", 0);
  struct ArrowArray na = {3, 3, 0, 0, 0, NULL, NULL, NULL, foreign_child_release, NULL};
  assert_int_equal(pt_array_validate(&s, &na, NULL), PT_OK);
  const void *one[1] = {NULL};
  na.n_buffers = 1;
  na.buffers = one;
  expect_invalid(&s, &na, PT_EINVAL, "null array needs 0 buffers but has 1");
  s.release(&s);
}

static void test_validate_fixed_size_and_dictionary(void **state) {
  struct ArrowSchema s, d;
  node(&s, "+s", "", 2);
  node(s.children[0], "+w:3", "vec", 1);
  node(s.children[0]->children[0], "g", "item", 0);
  node(s.children[1], "c", "color", 0);
  node(&d, "u", "", 0);
  assert_int_equal(pt_schema_set_dictionary(s.children[1], &d, NULL), PT_OK);

  double values[6] = {0};
  int8_t idx[2] = {1, 0};
  int32_t doff[3] = {0, 3, 5};
  const void *vbuf[2] = {NULL, values}, *ibuf[2] = {NULL, idx}, *dbuf[3] = {NULL, doff, "redblue"};
  const void *nobuf[1] = {NULL};
  struct ArrowArray items = {6, 0, 0, 2, 0, vbuf, NULL, NULL, foreign_child_release, NULL};
  struct ArrowArray *vchildren[1] = {&items};
  struct ArrowArray vec = {2, 0, 0, 1, 1, nobuf, vchildren, NULL, foreign_child_release, NULL};
  struct ArrowArray dict = {2, 0, 0, 3, 0, dbuf, NULL, NULL, foreign_child_release, NULL};
  struct ArrowArray color = {2, 0, 0, 2, 0, ibuf, NULL, &dict, foreign_child_release, NULL};
  struct ArrowArray *children[2] = {&vec, &color};
  struct ArrowArray top = {2, 0, 0, 1, 2, nobuf, children, NULL, foreign_child_release, NULL};
  assert_int_equal(pt_array_validate(&s, &top, NULL), PT_OK);

  items.length = 5;
  expect_invalid(&s, &top, PT_EFORMAT,
                 "column 'vec': child has 5 values but 2 rows at offset 0 of lists of 3 need 6");
  items.length = 6;
  idx[0] = 2;
  expect_invalid(&s, &top, PT_EFORMAT,
                 "column 'color': dictionary index 2 at row 0 is out of range for a dictionary "
                 "of 2 values");
  idx[0] = -1;
  expect_invalid(&s, &top, PT_EFORMAT,
                 "column 'color': dictionary index -1 at row 0 is out of range for a "
                 "dictionary of 2 values");
  /* A null row's index is not looked at. */
  uint8_t validity = 0x2;
  ibuf[0] = &validity;
  color.null_count = 1;
  assert_int_equal(pt_array_validate(&s, &top, NULL), PT_OK);
  doff[2] = 1;
  expect_invalid(&s, &top, PT_EFORMAT,
                 "column 'color': dictionary: offset 2 (1) is smaller than offset 1 (3)");
  doff[2] = 5;
  color.dictionary = NULL;
  expect_invalid(&s, &top, PT_EINVAL, "column 'color': array has no dictionary");
  s.release(&s);
}

/* Buffer sizes reported by a callback, as the IPC reader knows them. */
typedef struct size_override {
  const struct ArrowArray *array;
  int64_t buffer;
  int64_t size;
  int calls;
  const struct ArrowArray *sorted; /* said to have sorted offsets */
  int sorted_calls;
} size_override;

static int64_t sizes_cb(const struct ArrowArray *array, int64_t i, void *arg) {
  size_override *o = arg;
  if (i == PT__SORTED_OFFSETS) {
    o->sorted_calls++;
    return array == o->sorted;
  }
  o->calls++;
  if (array == o->array && i == o->buffer) return o->size;
  return -1;
}

static void test_validate_buffer_sizes(void **state) {
  struct ArrowSchema s;
  foreign_schema(&s);
  foreign_batch f;
  foreign_make(&f);
  pt__view v;
  pt_error err;
  assert_int_equal(pt__view_init(&v, &s, &f.top, &err), PT_OK);
  struct {
    const struct ArrowArray *array;
    int64_t buffer, size;
    const char *message;
  } checks[] = {
      {&f.a, 1, 23,
       "column 'a': values buffer (buffer 1) has 23 bytes but 24 are needed for 6 rows at "
       "offset 0"},
      {&f.a, 0, 0,
       "column 'a': validity bitmap (buffer 0) has 0 bytes but 1 are needed for 6 rows at "
       "offset 0"},
      {&f.tags, 1, 27,
       "column 'tags': offsets buffer (buffer 1) has 27 bytes but 28 are needed for 6 rows at "
       "offset 0"},
      {&f.tag_items, 2, 9,
       "column 'tags': child 0: data buffer (buffer 2) has 9 bytes but 10 are needed for 6 "
       "rows at offset 0"},
  };
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    size_override o = {checks[i].array, checks[i].buffer, checks[i].size, 0, NULL, 0};
    assert_int_equal(pt__view_validate(&v, sizes_cb, &o, &err), PT_EFORMAT);
    assert_string_equal(err.message, checks[i].message);
    o.size = checks[i].size + 1;
    assert_int_equal(pt__view_validate(&v, sizes_cb, &o, &err), PT_OK);
  }
  /* Every non-NULL buffer is asked about: a=2, tags offsets=1, items=2;
   * and both nodes with offsets whether they are known sorted. */
  size_override o = {NULL, 0, 0, 0, NULL, 0};
  assert_int_equal(pt__view_validate(&v, sizes_cb, &o, &err), PT_OK);
  assert_int_equal(o.calls, 5);
  assert_int_equal(o.sorted_calls, 2);
  /* Offsets the caller checked already are not checked again (the IPC
   * reader checks them as it decompresses); the others still are. */
  f.item_offsets[2] = 0;
  o = (size_override){NULL, 0, 0, 0, &f.tag_items, 0};
  assert_int_equal(pt__view_validate(&v, sizes_cb, &o, &err), PT_OK);
  o.sorted = NULL;
  assert_int_equal(pt__view_validate(&v, sizes_cb, &o, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "column 'tags': child 0: offset 2 (0) is smaller than offset 1 (1)");
  f.item_offsets[2] = 3;
  pt__view_reset(&v);

  /* A slice at offset 4 needs the bytes up to its end. */
  f.a.offset = 4;
  f.a.length = 2;
  f.a.null_count = 0;
  f.top.length = 2;
  f.tags.length = 2;
  f.tags.offset = 4;
  assert_int_equal(pt__view_init(&v, &s, &f.top, &err), PT_OK);
  size_override o2 = {&f.a, 1, 20, 0, NULL, 0};
  assert_int_equal(pt__view_validate(&v, sizes_cb, &o2, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "column 'a': values buffer (buffer 1) has 20 bytes but 24 are needed for 2 "
                      "rows at offset 4");
  pt__view_reset(&v);
  s.release(&s);
}

static void test_view_init_failures(void **state) {
  struct ArrowSchema s;
  foreign_schema(&s);
  foreign_batch f;
  foreign_make(&f);
  pt__view v;
  for (int64_t n = 0; n < 3; n++) {
    pt__alloc_fail_after(n);
    int rc = pt__view_init(&v, &s, &f.top, NULL);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) pt__view_reset(&v);
    else assert_int_equal(rc, PT_ENOMEM);
  }
  /* Schemas that do not parse name their column. */
  struct ArrowSchema m;
  node(&m, "+s", "", 2);
  node(m.children[0], "+r", "when", 0);
  node(m.children[1], "+l", "tags", 1);
  node(m.children[1]->children[0], "u", "item", 0);
  pt_error err;
  assert_int_equal(pt_array_validate(&m, &f.top, &err), PT_EINVAL);
  assert_string_equal(err.message, "column 'when': type format '+r' needs 2 children, the schema "
                                   "has 0");
  m.release(&m);
  s.release(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_and_array_init),
      cmocka_unit_test(test_slice_foreign_release_once),
      cmocka_unit_test(test_slice_errors),
      cmocka_unit_test(test_slice_fault_injection),
      cmocka_unit_test(test_copy_compacts),
      cmocka_unit_test(test_bit_offsets),
      cmocka_unit_test(test_copy_dictionary_and_fixed_size),
      cmocka_unit_test(test_validate_messages),
      cmocka_unit_test(test_validate_fixed_size_and_dictionary),
      cmocka_unit_test(test_validate_buffer_sizes),
      cmocka_unit_test(test_view_init_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
