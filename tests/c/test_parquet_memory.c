/* test_parquet_memory.c — the reader's memory is bounded by a row group's
 * column chunks being decoded, not by the file: a file of 128 row groups
 * (128 MiB of values, over 64 MiB of SNAPPY pages) is read whole while the process's peak
 * resident memory (VmHWM, reset through /proc/self/clear_refs) grows by no
 * more than a few row groups' worth.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "protium.h"

enum { ROWS = 65536, GROUPS = 128, COLS = 2 };
#define RG_BYTES ((int64_t)ROWS * COLS * 8) /* one row group's values: 1 MiB */

static void no_release(struct ArrowArray *a) { a->release = NULL; }

/* splitmix64's finalizer: values SNAPPY cannot shrink. */
static int64_t mix(int64_t x) {
  uint64_t z = (uint64_t)x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (int64_t)(z ^ (z >> 31));
}

/* Writes the file in a child process, so that none of the writer's memory
 * is resident in this one when the reading is measured. */
static void write_file(const char *path) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    pt_error err;
    struct ArrowSchema schema;
    if (pt_schema_init(&schema, "+s", "", 0, COLS, &err) != PT_OK ||
        pt_schema_init(schema.children[0], "l", "id", 0, 0, &err) != PT_OK ||
        pt_schema_init(schema.children[1], "l", "v", 0, 0, &err) != PT_OK)
      _exit(2);
    int64_t *id = malloc(ROWS * sizeof *id), *v = malloc(ROWS * sizeof *v);
    if (!id || !v) _exit(3);
    pt_parquet_write_options o;
    pt_parquet_write_options_init(&o);
    o.row_group_rows = ROWS;
    o.use_dictionary = 0;
    pt_parquet_writer *w;
    if (pt_parquet_writer_open_path(path, &schema, &o, &w, &err) != PT_OK) _exit(4);
    for (int g = 0; g < GROUPS; g++) {
      for (int64_t i = 0; i < ROWS; i++) {
        id[i] = (int64_t)g * ROWS + i;
        v[i] = mix(id[i]);
      }
      const void *b0[2] = {NULL, id}, *b1[2] = {NULL, v}, *bb[1] = {NULL};
      struct ArrowArray c0 = {.length = ROWS, .n_buffers = 2, .buffers = b0, .release = no_release};
      struct ArrowArray c1 = {.length = ROWS, .n_buffers = 2, .buffers = b1, .release = no_release};
      struct ArrowArray *ch[2] = {&c0, &c1};
      struct ArrowArray batch = {.length = ROWS, .n_buffers = 1, .buffers = bb, .n_children = 2,
                                 .children = ch, .release = no_release};
      if (pt_parquet_writer_write(w, &batch, &err) != PT_OK) _exit(5);
    }
    if (pt_parquet_writer_close(w, &err) != PT_OK) _exit(6);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* VmHWM of this process, in bytes. */
static int64_t peak_rss(void) {
  FILE *f = fopen("/proc/self/status", "r");
  assert_non_null(f);
  char line[256];
  long long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
  fclose(f);
  assert_true(kb > 0);
  return (int64_t)kb * 1024;
}

static void test_peak_memory_is_a_few_row_groups(void **state) {
  (void)state;
  char path[] = "/tmp/pt_pq_memory_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  write_file(path);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  assert_true(st.st_size > GROUPS * RG_BYTES / 2); /* the v column stays whole */
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  assert_true(map != MAP_FAILED);
  close(fd);

  /* Peak from here on: writing "5" resets VmHWM to the resident size. */
  FILE *cr = fopen("/proc/self/clear_refs", "w");
  if (cr == NULL || fputs("5", cr) < 0 || fclose(cr) != 0) {
    munmap(map, (size_t)st.st_size);
    unlink(path);
    skip(); /* a kernel that cannot reset it */
  }
  int64_t base = peak_rss();

  pt_error err;
  struct ArrowArrayStream s;
  assert_int_equal(pt_parquet_read_buffer(map, st.st_size, NULL, NULL, NULL, &s, &err), PT_OK);
  int64_t rows = 0, batches = 0;
  uint64_t sum = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(s.get_next(&s, &a), 0);
    if (a.release == NULL) break;
    const int64_t *id = (const int64_t *)a.children[0]->buffers[1] + a.children[0]->offset;
    const int64_t *v = (const int64_t *)a.children[1]->buffers[1] + a.children[1]->offset;
    for (int64_t i = 0; i < a.length; i++) {
      assert_true(v[i] == mix(id[i]));
      sum += (uint64_t)id[i];
    }
    rows += a.length;
    batches++;
    a.release(&a);
    /* The file's pages are the page cache's, not the reader's: dropped
     * from this mapping here so that VmHWM counts what the reader holds
     * (they come back from the file if touched again). */
    assert_int_equal(madvise(map, (size_t)st.st_size, MADV_DONTNEED), 0);
  }
  s.release(&s);
  int64_t grew = peak_rss() - base;
  munmap(map, (size_t)st.st_size);
  unlink(path);

  const uint64_t n = (uint64_t)ROWS * GROUPS;
  assert_int_equal(rows, (int64_t)n);
  assert_int_equal(batches, GROUPS);
  assert_true(sum == n * (n - 1) / 2);
  /* What may be resident at once, in row groups (RG_BYTES of values each):
   * the batch handed out (1), the row group decoded on the calling thread
   * and the next on the read-ahead helper (2), each thread's decompressed
   * page (at most a column chunk's: 1 between them) and the compressed
   * pages of the row groups touched since the last madvise (3): 7. Twice
   * that for allocator rounding and chunks' first allocations sized one
   * row above need: 14 row groups, 14 MiB, where the file holds 128 (over
   * 64 MiB of pages). */
  int64_t bound = 14 * RG_BYTES;
  print_message("peak resident memory grew by %lld KiB reading %lld KiB (bound %lld KiB)\n",
                (long long)grew / 1024, (long long)st.st_size / 1024, (long long)bound / 1024);
#if defined(__SANITIZE_ADDRESS__)
  (void)bound; /* ASan's quarantine keeps freed memory resident: no bound */
#else
  assert_true(grew < bound);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_peak_memory_is_a_few_row_groups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
