/* demo.c — `protium demo [DIR]`: the engine at work on local[2]. A range of
 * ids is enriched by a C function running in the executors, shuffled by a key
 * column, written as Arrow IPC files with an exact commit, then read back,
 * counted and checked (every key in exactly one file, every id once). Without
 * DIR the output goes to a temporary directory that is removed at the end.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "protium.h"

#define DEMO_ROWS 1000000
#define DEMO_PARTITIONS 8
#define DEMO_OUT_PARTITIONS 4
#define DEMO_KEYS 100

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* struct<id: int64 not null, key: int64 not null, label: utf8, score: double> */
static int enriched_schema(struct ArrowSchema *out, pt_error *err) {
  static const char *const formats[] = {"l", "l", "u", "g"};
  static const char *const names[] = {"id", "key", "label", "score"};
  static const int64_t flags[] = {0, 0, ARROW_FLAG_NULLABLE, ARROW_FLAG_NULLABLE};
  int rc = pt_schema_init(out, "+s", "", 0, 4, err);
  for (int i = 0; rc == PT_OK && i < 4; i++)
    rc = pt_schema_init(out->children[i], formats[i], names[i], flags[i], 0, err);
  if (rc != PT_OK && out->release) out->release(out);
  return rc;
}

/* The map function the executors run: adds a key (a scrambled bucket of the
 * id), a label and a score. Every seventh score is null. */
static int demo_enrich(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  (void)ctx, (void)schema, (void)arg, (void)arg_size;
  const struct ArrowArray *col = batch->children[0];
  const int64_t *id = (const int64_t *)col->buffers[1] + col->offset + batch->offset;
  struct ArrowSchema out_schema;
  pt_builder *b = NULL;
  int rc = enriched_schema(&out_schema, err);
  if (rc != PT_OK) return rc;
  if ((rc = pt_builder_new(&out_schema, &b, err)) != PT_OK) goto release_schema;
  for (int64_t i = 0; i < batch->length && rc == PT_OK; i++) {
    int64_t key = (int64_t)(((uint64_t)id[i] * 2654435761u) % DEMO_KEYS);
    const char *label = id[i] % 2 == 0 ? "even" : "odd";
    rc = pt_builder_append_int(pt_builder_child(b, 0), id[i]);
    if (rc == PT_OK) rc = pt_builder_append_int(pt_builder_child(b, 1), key);
    if (rc == PT_OK)
      rc = pt_builder_append_bytes(pt_builder_child(b, 2), label, (int64_t)strlen(label));
    if (rc == PT_OK)
      rc = id[i] % 7 == 0 ? pt_builder_append_null(pt_builder_child(b, 3), 1)
                          : pt_builder_append_double(pt_builder_child(b, 3), (double)id[i] / 8);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
  }
  if (rc != PT_OK) {
    snprintf(err->message, sizeof err->message, "demo_enrich: %s", pt_builder_last_error(b));
    goto free_builder;
  }
  rc = pt_builder_finish(b, out, err);
free_builder:
  pt_builder_free(b);
release_schema:
  out_schema.release(&out_schema);
  return rc;
}
PT_REGISTER_FN(demo_enrich)

/* Reads every part file of dir: adds up rows and ids, and checks that each
 * key appears in one file only. Returns 0 when all is as it should be. */
static int check_output(const char *dir, int64_t *rows, int64_t *files, pt_error *err) {
  int key_file[DEMO_KEYS];
  for (int k = 0; k < DEMO_KEYS; k++) key_file[k] = -1;
  int64_t id_sum = 0;
  *rows = *files = 0;
  for (int f = 0; f < DEMO_OUT_PARTITIONS; f++) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/part-%05d.arrow", dir, f) >= (int)sizeof path) return 1;
    struct ArrowArrayStream stream;
    if (pt_ipc_read_path(path, &stream, err) != PT_OK) return 1;
    (*files)++;
    struct ArrowArray b;
    while (stream.get_next(&stream, &b) == 0 && b.release != NULL) {
      const int64_t *id = (const int64_t *)b.children[0]->buffers[1] + b.children[0]->offset;
      const int64_t *key = (const int64_t *)b.children[1]->buffers[1] + b.children[1]->offset;
      for (int64_t i = 0; i < b.length; i++) {
        id_sum += id[b.offset + i];
        int64_t k = key[b.offset + i];
        if (k < 0 || k >= DEMO_KEYS || (key_file[k] != -1 && key_file[k] != f)) {
          snprintf(err->message, sizeof err->message, "key %lld is in more than one file",
                   (long long)k);
          b.release(&b);
          stream.release(&stream);
          return 1;
        }
        key_file[k] = f;
      }
      *rows += b.length;
      b.release(&b);
    }
    stream.release(&stream);
  }
  if (id_sum != (int64_t)DEMO_ROWS * (DEMO_ROWS - 1) / 2) {
    snprintf(err->message, sizeof err->message, "the ids do not add up: some are missing or twice");
    return 1;
  }
  return 0;
}

static void remove_output(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Prints the first rows of the first output file as JSON lines. */
static void show_rows(const char *dir, int64_t n) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/part-00000.arrow", dir) >= (int)sizeof path) return;
  struct ArrowArrayStream stream;
  pt_error err;
  if (pt_ipc_read_path(path, &stream, &err) != PT_OK) return;
  struct ArrowSchema schema;
  struct ArrowArray b, head;
  if (stream.get_schema(&stream, &schema) == 0) {
    if (stream.get_next(&stream, &b) == 0 && b.release != NULL) {
      if (pt_array_slice(&b, 0, b.length < n ? b.length : n, &head, &err) == PT_OK) {
        pt_buf out = {0};
        if (pt_json_write_batch(&schema, &head, &out, &err) == PT_OK)
          fwrite(out.data, 1, out.len, stdout);
        pt_buf_free(&out);
        head.release(&head);
      }
      b.release(&b);
    }
    schema.release(&schema);
  }
  stream.release(&stream);
}

int pt__cli_demo(int argc, char **argv) {
  const char *master = "local[2]";
  pt_error err = {0};
  pt_conf *conf = NULL;
  if (pt_conf_new(&conf, &err) != PT_OK) {
    fprintf(stderr, "protium: demo: %s\n", err.message);
    return CLI_FAILED;
  }
  for (;;) {
    if (argc >= 3 && strcmp(argv[1], "--master") == 0) {
      /* --master slurm: the same pipeline on a Slurm allocation's nodes */
      master = argv[2];
    } else if (argc >= 3 && strcmp(argv[1], "--conf") == 0) {
      /* --conf net.tls=on ...: the pipeline under the session's settings */
      char *eq = strchr(argv[2], '=');
      if (!eq) {
        fprintf(stderr, "protium: demo: --conf takes KEY=VALUE, not '%s'\n", argv[2]);
        pt_conf_free(conf);
        return CLI_USAGE;
      }
      *eq = 0;
      int rc = pt_conf_set(conf, argv[2], eq + 1, &err);
      *eq = '=';
      if (rc != PT_OK) {
        fprintf(stderr, "protium: demo: --conf %s: %s\n", argv[2], err.message);
        pt_conf_free(conf);
        return CLI_USAGE;
      }
    } else {
      break;
    }
    argc -= 2;
    argv += 2;
  }
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    fprintf(stderr, "protium: demo: usage: protium demo [--master MASTER] [--conf KEY=VALUE]... "
                    "[DIR]\n");
    pt_conf_free(conf);
    return CLI_USAGE;
  }
  char tmp[4096];
  const char *dir = argc == 2 ? argv[1] : NULL;
  if (dir == NULL) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (snprintf(tmp, sizeof tmp, "%s/protium-demo-XXXXXX", base) >= (int)sizeof tmp ||
        mkdtemp(tmp) == NULL) {
      fprintf(stderr, "protium: demo: cannot create a directory in %s\n", base);
      pt_conf_free(conf);
      return CLI_FAILED;
    }
    dir = tmp;
  }
  pt_session *s = NULL;
  pt_dataset *range = NULL, *enriched = NULL, *shuffled = NULL, *back = NULL;
  struct ArrowSchema schema = {0};
  int status = CLI_FAILED;
  const char *step = "";

  printf("protium demo: range -> map_batches -> repartition by key -> write_ipc -> read back\n");
  double t0 = now_ms();
  step = "open a session";
  if (pt_session_open(master, conf, &s, &err) != PT_OK) goto done;
  pt_executor_info info[2];
  int64_t n_exec = 0;
  step = "list executors";
  if (pt_session_executors(s, info, 2, &n_exec, &err) != PT_OK) goto done;
  printf("  session    %s: %lld executor processes (pids %lld, %lld) ready in %.1f ms\n",
         master, (long long)n_exec, (long long)info[0].pid,
         (long long)(n_exec > 1 ? info[1].pid : 0), now_ms() - t0);

  step = "plan";
  if (enriched_schema(&schema, &err) != PT_OK ||
      pt_range(s, 0, DEMO_ROWS, DEMO_PARTITIONS, &range, &err) != PT_OK ||
      pt_map_batches(range, demo_enrich, &schema, NULL, 0, &enriched, &err) != PT_OK)
    goto done;
  const char *keys[] = {"key"};
  if (pt_repartition_by(enriched, DEMO_OUT_PARTITIONS, keys, 1, &shuffled, &err) != PT_OK)
    goto done;
  printf("  plan       range(0, %d) in %d partitions -> map_batches(demo_enrich) -> "
         "repartition_by(key, %d) -> write_ipc\n",
         DEMO_ROWS, DEMO_PARTITIONS, DEMO_OUT_PARTITIONS);

  step = "write_ipc";
  double t1 = now_ms();
  if (pt_write_ipc(shuffled, dir, NULL, &err) != PT_OK) goto done;
  printf("  write_ipc  %d files in %s, committed with _SUCCESS, in %.1f ms\n",
         DEMO_OUT_PARTITIONS, dir, now_ms() - t1);

  step = "read back";
  double t2 = now_ms();
  int64_t count = 0;
  if (pt_read_ipc(s, dir, &back, &err) != PT_OK || pt_count(back, &count, &err) != PT_OK)
    goto done;
  printf("  count      %lld rows read back by the executors in %.1f ms\n", (long long)count,
         now_ms() - t2);

  step = "check";
  int64_t rows, files;
  if (check_output(dir, &rows, &files, &err) != 0) goto done;
  if (rows != DEMO_ROWS || count != DEMO_ROWS) {
    snprintf(err.message, sizeof err.message, "%lld rows in the files, count says %lld",
             (long long)rows, (long long)count);
    goto done;
  }
  printf("  check      ok: every id once, every key in exactly one of %lld files\n",
         (long long)files);
  printf("  first rows of part-00000.arrow:\n");
  fflush(stdout);
  show_rows(dir, 3);
  printf("  total      %.1f ms\n", now_ms() - t0);
  status = CLI_OK;

done:
  if (status != CLI_OK) fprintf(stderr, "protium: demo: %s: %s\n", step, err.message);
  pt_dataset_free(back);
  pt_dataset_free(shuffled);
  pt_dataset_free(enriched);
  pt_dataset_free(range);
  if (schema.release) schema.release(&schema);
  if (s) pt_session_close(s);
  pt_conf_free(conf);
  if (dir == tmp) remove_output(dir);
  return status;
}
