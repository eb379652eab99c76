/* log.c — a Delta table at a version: its _delta_log replayed. The newest
 * complete checkpoint at or below the version (Parquet, one file or
 * several parts) gives the state it recorded; the JSON commits after it
 * are applied in order (add replaces, remove deletes, the last metaData
 * and protocol win). Log files may be damaged or missing: every error
 * names the file (and line) at fault.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "delta/delta.h"

#define LOG_MAX_FILE (1LL << 31) /* bytes of one JSON commit */

/* ------------------------------------------------------------------------ */
/* The log directory */

typedef struct cp_entry {
  int64_t version;
  int64_t parts;          /* 1: a single-file checkpoint */
  int64_t seen;           /* parts found */
} cp_entry;

typedef struct listing {
  int64_t *versions;      /* JSON commits found, sorted */
  int64_t n, cap;
  cp_entry *cps;          /* checkpoints found */
  int64_t n_cps, cap_cps;
} listing;

static void listing_free(listing *l) {
  pt__free(l->versions);
  pt__free(l->cps);
  memset(l, 0, sizeof *l);
}

static bool digits(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int note_checkpoint(listing *l, int64_t v, int64_t parts) {
  for (int64_t i = 0; i < l->n_cps; i++)
    if (l->cps[i].version == v && l->cps[i].parts == parts) {
      l->cps[i].seen++;
      return PT_OK;
    }
  if (pt__grow((void **)&l->cps, &l->cap_cps, l->n_cps + 1, sizeof *l->cps) != PT_OK)
    return PT_ENOMEM;
  l->cps[l->n_cps++] = (cp_entry){v, parts, 1};
  return PT_OK;
}

static int list_log(const char *log, listing *l, pt_error *err) {
  memset(l, 0, sizeof *l);
  DIR *d = opendir(log);
  if (!d) {
    if (errno == ENOENT)
      return pt__errorf(err, PT_EINVAL, "'%s' is not a Delta table: it has no _delta_log directory",
                        log);
    return pt__errorf(err, PT_EIO, "cannot list '%s': %s", log, strerror(errno));
  }
  struct dirent *e;
  int rc = PT_OK;
  while (rc == PT_OK && (e = readdir(d))) {
    const char *n = e->d_name;
    size_t len = strlen(n);
    if (len < 21 || !digits(n, 20) || n[20] != '.') continue;
    int64_t v = strtoll(n, NULL, 10);
    const char *rest = n + 21;
    if (strcmp(rest, "json") == 0) {
      if (pt__grow((void **)&l->versions, &l->cap, l->n + 1, sizeof *l->versions) != PT_OK)
        rc = PT_ENOMEM;
      else l->versions[l->n++] = v;
    } else if (strcmp(rest, "checkpoint.parquet") == 0) {
      if (note_checkpoint(l, v, 1) != PT_OK) rc = PT_ENOMEM;
    } else if (strncmp(rest, "checkpoint.", 11) == 0 && strlen(rest) == 11 + 21 + 8 &&
               digits(rest + 11, 10) && rest[21] == '.' && digits(rest + 22, 10) &&
               strcmp(rest + 32, ".parquet") == 0) {
      int64_t part = strtoll(rest + 11, NULL, 10), parts = strtoll(rest + 22, NULL, 10);
      if (part >= 1 && part <= parts && note_checkpoint(l, v, parts) != PT_OK) rc = PT_ENOMEM;
    }
  }
  closedir(d);
  if (rc != PT_OK) {
    listing_free(l);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  if (l->n > 1) qsort(l->versions, (size_t)l->n, sizeof *l->versions, cmp_i64);
  return PT_OK;
}

int pt__delta_latest_version(const char *table, int64_t *version, pt_error *err) {
  *version = -1;
  char log[PATH_MAX];
  snprintf(log, sizeof log, "%s/_delta_log", table);
  struct stat sb;
  if (stat(log, &sb) != 0) return PT_OK;
  listing l;
  PT_RETURN_NOT_OK(list_log(log, &l, err));
  if (l.n > 0) *version = l.versions[l.n - 1];
  for (int64_t i = 0; i < l.n_cps; i++)
    if (l.cps[i].version > *version && l.cps[i].seen == l.cps[i].parts) *version = l.cps[i].version;
  listing_free(&l);
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The state being built */

typedef struct state {
  pt__delta_snapshot *s;
  int64_t cap_files;
  int64_t *slots;         /* hash of paths: index + 1 into s->files, 0 = empty, -1 = deleted */
  int64_t n_slots;        /* a power of two */
  int64_t used;           /* slots not empty (deleted included) */
  bool have_meta, have_protocol;
} state;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

static void file_free(pt__delta_file *f, int64_t nk) {
  pt__free(f->path);
  for (int64_t k = 0; f->values && k < nk; k++) pt__free(f->values[k]);
  pt__free(f->values);
  pt__free(f->stats);
  memset(f, 0, sizeof *f);
}

static int64_t *find_slot(state *st, const char *path, bool for_insert) {
  uint64_t mask = (uint64_t)st->n_slots - 1;
  int64_t *tomb = NULL;
  for (uint64_t i = hash_str(path) & mask;; i = (i + 1) & mask) {
    int64_t *slot = &st->slots[i];
    if (*slot == 0) return for_insert && tomb ? tomb : slot;
    if (*slot < 0) {
      if (!tomb) tomb = slot;
      continue;
    }
    if (strcmp(st->s->files[*slot - 1].path, path) == 0) return slot;
  }
}

static int rehash(state *st) {
  int64_t n = st->n_slots ? st->n_slots * 2 : 1024;
  while (n < 4 * st->s->n_files) n *= 2;
  int64_t *slots = pt__calloc((size_t)n, sizeof *slots);
  if (!slots) return PT_ENOMEM;
  pt__free(st->slots);
  st->slots = slots;
  st->n_slots = n;
  st->used = 0;
  for (int64_t i = 0; i < st->s->n_files; i++) {
    if (!st->s->files[i].path) continue;
    *find_slot(st, st->s->files[i].path, true) = i + 1;
    st->used++;
  }
  return PT_OK;
}

/* The partition columns of the current metaData order each file's values;
 * a file keeps its map until the end (values are matched by name there). */
typedef struct pending_values {
  char **keys, **vals;
  int64_t n;
} pending_values;

/* Adds (or replaces) a file; takes path, stats and the values. */
static int state_add(state *st, char *path, int64_t size, int64_t mtime, char **keys, char **vals,
                     int64_t nv, char *stats) {
  pt__delta_snapshot *s = st->s;
  if (st->n_slots == 0 || 2 * (st->used + 1) > st->n_slots) {
    if (rehash(st) != PT_OK) goto oom;
  }
  int64_t *slot = find_slot(st, path, true);
  pt__delta_file *f;
  if (*slot > 0) {
    f = &s->files[*slot - 1];
  } else {
    if (pt__grow((void **)&s->files, &st->cap_files, s->n_files + 1, sizeof *s->files) != PT_OK)
      goto oom;
    f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    if (*slot == 0) st->used++;
    *slot = ++s->n_files;
  }
  /* Values stay key/value pairs until the replay ends: a later metaData
   * may still change the partition columns. */
  pending_values *pv = pt__calloc(1, sizeof *pv);
  if (!pv) goto oom;
  pv->keys = keys;
  pv->vals = vals;
  pv->n = nv;
  if (f->pending) {
    pending_values *old = (pending_values *)f->pending;
    for (int64_t k = 0; k < old->n; k++) {
      pt__free(old->keys[k]);
      pt__free(old->vals[k]);
    }
    pt__free(old->keys);
    pt__free(old->vals);
    pt__free(old);
  }
  pt__free(f->path);
  pt__free(f->stats);
  f->path = path;
  f->size = size;
  f->mtime = mtime;
  f->pending = pv;
  f->stats = stats;
  return PT_OK;
oom:
  pt__free(path);
  pt__free(stats);
  for (int64_t k = 0; k < nv; k++) {
    pt__free(keys[k]);
    pt__free(vals[k]);
  }
  pt__free(keys);
  pt__free(vals);
  return PT_ENOMEM;
}

static void pending_free(pending_values *pv) {
  if (!pv) return;
  for (int64_t k = 0; k < pv->n; k++) {
    pt__free(pv->keys[k]);
    pt__free(pv->vals[k]);
  }
  pt__free(pv->keys);
  pt__free(pv->vals);
  pt__free(pv);
}

static void state_remove(state *st, const char *path) {
  if (st->n_slots == 0) return;
  int64_t *slot = find_slot(st, path, false);
  if (*slot <= 0) return;
  pt__delta_file *f = &st->s->files[*slot - 1];
  pending_free((pending_values *)f->pending);
  f->pending = NULL;
  file_free(f, 0);
  *slot = -1;
}

static void free_strs(char **a, int64_t n) {
  for (int64_t i = 0; a && i < n; i++) pt__free(a[i]);
  pt__free(a);
}

static int set_protocol(state *st, int64_t reader, int64_t writer, char **rf, int64_t nrf,
                        char **wf, int64_t nwf) {
  pt__delta_snapshot *s = st->s;
  free_strs(s->reader_features, s->n_reader_features);
  free_strs(s->writer_features, s->n_writer_features);
  s->min_reader = reader;
  s->min_writer = writer;
  s->reader_features = rf;
  s->n_reader_features = nrf;
  s->writer_features = wf;
  s->n_writer_features = nwf;
  st->have_protocol = true;
  return PT_OK;
}

/* Takes ownership of everything; ck/cv (nc entries, values may be NULL)
 * become the snapshot's configuration. */
static void set_meta(state *st, char *id, char *schema, char **pcols, int64_t npc, char *cmap,
                     bool append_only, char **ck, char **cv, int64_t nc, int64_t created) {
  pt__delta_snapshot *s = st->s;
  pt__free(s->table_id);
  pt__free(s->schema_string);
  free_strs(s->partition_columns, s->n_partition_columns);
  pt__free(s->column_mapping);
  free_strs(s->config_keys, s->n_config);
  free_strs(s->config_values, s->n_config);
  s->config_keys = ck;
  s->config_values = cv;
  s->n_config = nc;
  s->created_time = created;
  s->table_id = id;
  s->schema_string = schema;
  s->partition_columns = pcols;
  s->n_partition_columns = npc;
  s->column_mapping = cmap;
  s->append_only = append_only;
  st->have_meta = true;
}

/* ------------------------------------------------------------------------ */
/* JSON commits */

static int strs_of_json(const pt__json *a, char ***out, int64_t *n) {
  *out = NULL;
  *n = 0;
  if (!a || a->type != PT__JSON_ARRAY) return PT_OK;
  char **v = pt__calloc((size_t)(a->n ? a->n : 1), sizeof *v);
  if (!v) return PT_ENOMEM;
  for (int64_t i = 0; i < a->n; i++) {
    const pt__json *e = a->items[i];
    v[*n] = pt__strdup(e->type == PT__JSON_STRING ? e->str : "");
    if (!v[*n]) {
      free_strs(v, *n);
      return PT_ENOMEM;
    }
    (*n)++;
  }
  *out = v;
  return PT_OK;
}

static int apply_json_action(state *st, const pt__json *line, const char **bad) {
  const pt__json *a;
  if ((a = pt__json_get(line, "add")) && a->type == PT__JSON_OBJECT) {
    const char *path = pt__json_str(a, "path");
    if (!path) {
      *bad = "an add action without a path";
      return PT_EFORMAT;
    }
    const pt__json *pv = pt__json_get(a, "partitionValues");
    const pt__json *size = pt__json_get(a, "size");
    const char *stats = pt__json_str(a, "stats");
    if (pt__json_get(a, "deletionVector") && pt__json_get(a, "deletionVector")->type != PT__JSON_NULL) {
      *bad = "an add action with a deletion vector (reader feature deletionVectors)";
      return PT_ENOTSUP;
    }
    int64_t nv = pv && pv->type == PT__JSON_OBJECT ? pv->n : 0;
    char **keys = pt__calloc((size_t)(nv ? nv : 1), sizeof *keys);
    char **vals = pt__calloc((size_t)(nv ? nv : 1), sizeof *vals);
    char *p = pt__strdup(path), *sdup = stats ? pt__strdup(stats) : NULL;
    bool ok = keys && vals && p && (!stats || sdup);
    for (int64_t k = 0; ok && k < nv; k++) {
      keys[k] = pt__strdup(pv->keys[k]);
      const pt__json *v = pv->items[k];
      vals[k] = v->type == PT__JSON_STRING ? pt__strdup(v->str) : NULL;
      ok = keys[k] && (v->type != PT__JSON_STRING || vals[k]);
    }
    if (!ok) {
      free_strs(keys, nv);
      free_strs(vals, nv);
      pt__free(p);
      pt__free(sdup);
      return PT_ENOMEM;
    }
    const pt__json *mt = pt__json_get(a, "modificationTime");
    return state_add(st, p, size && size->type == PT__JSON_NUMBER ? size->i : -1,
                     mt && mt->type == PT__JSON_NUMBER && mt->is_int ? mt->i : 0, keys, vals, nv, sdup);
  }
  if ((a = pt__json_get(line, "remove")) && a->type == PT__JSON_OBJECT) {
    const char *path = pt__json_str(a, "path");
    if (!path) {
      *bad = "a remove action without a path";
      return PT_EFORMAT;
    }
    state_remove(st, path);
    return PT_OK;
  }
  if ((a = pt__json_get(line, "metaData")) && a->type == PT__JSON_OBJECT) {
    const char *schema = pt__json_str(a, "schemaString");
    if (!schema) {
      *bad = "a metaData action without a schemaString";
      return PT_EFORMAT;
    }
    const pt__json *conf = pt__json_get(a, "configuration");
    const char *cmap = pt__json_str(conf, "delta.columnMapping.mode");
    const char *ao = pt__json_str(conf, "delta.appendOnly");
    const char *id = pt__json_str(a, "id");
    char **pcols;
    int64_t npc;
    char *idd = pt__strdup(id ? id : ""), *sd = pt__strdup(schema),
         *cm = cmap ? pt__strdup(cmap) : NULL;
    int64_t nc = conf && conf->type == PT__JSON_OBJECT ? conf->n : 0;
    char **ck = pt__calloc((size_t)(nc ? nc : 1), sizeof *ck);
    char **cv = pt__calloc((size_t)(nc ? nc : 1), sizeof *cv);
    bool oom = !ck || !cv;
    for (int64_t k = 0; !oom && k < nc; k++) {
      ck[k] = pt__strdup(conf->keys[k]);
      if (conf->items[k]->type == PT__JSON_STRING) cv[k] = pt__strdup(conf->items[k]->str);
      oom = !ck[k] || (conf->items[k]->type == PT__JSON_STRING && !cv[k]);
    }
    const pt__json *ct = pt__json_get(a, "createdTime");
    if (oom || !idd || !sd || (cmap && !cm) ||
        strs_of_json(pt__json_get(a, "partitionColumns"), &pcols, &npc) != PT_OK) {
      pt__free(idd);
      pt__free(sd);
      pt__free(cm);
      free_strs(ck, nc);
      free_strs(cv, nc);
      return PT_ENOMEM;
    }
    set_meta(st, idd, sd, pcols, npc, cm, ao && strcmp(ao, "true") == 0, ck, cv, nc,
             ct && ct->type == PT__JSON_NUMBER && ct->is_int ? ct->i : -1);
    return PT_OK;
  }
  if ((a = pt__json_get(line, "protocol")) && a->type == PT__JSON_OBJECT) {
    const pt__json *r = pt__json_get(a, "minReaderVersion"), *w = pt__json_get(a, "minWriterVersion");
    if (!r || r->type != PT__JSON_NUMBER || !w || w->type != PT__JSON_NUMBER) {
      *bad = "a protocol action without minReaderVersion and minWriterVersion";
      return PT_EFORMAT;
    }
    char **rf, **wf;
    int64_t nrf, nwf;
    if (strs_of_json(pt__json_get(a, "readerFeatures"), &rf, &nrf) != PT_OK) return PT_ENOMEM;
    if (strs_of_json(pt__json_get(a, "writerFeatures"), &wf, &nwf) != PT_OK) {
      free_strs(rf, nrf);
      return PT_ENOMEM;
    }
    return set_protocol(st, r->i, w->i, rf, nrf, wf, nwf);
  }
  /* commitInfo, cdc: nothing to replay; txn and domainMetadata are state
   * a checkpoint must carry, which protium's checkpoints do not. */
  if (pt__json_get(line, "txn") || pt__json_get(line, "domainMetadata")) st->s->has_txn = true;
  return PT_OK;
}

static int read_file(const char *path, char **out, int64_t *len, pt_error *err) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pt__errorf(err, PT_EIO, "cannot open '%s': %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_size > LOG_MAX_FILE) {
    close(fd);
    return pt__errorf(err, PT_EFORMAT, "'%s' is too large for a log file", path);
  }
  char *buf = pt__malloc((size_t)sb.st_size + 1);
  if (!buf) {
    close(fd);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  int64_t got = 0;
  while (got < sb.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)(sb.st_size - got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  close(fd);
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return PT_OK;
}

static int apply_commit(state *st, const char *path, pt_error *err) {
  char *text;
  int64_t len;
  PT_RETURN_NOT_OK(read_file(path, &text, &len, err));
  int rc = PT_OK;
  int64_t line_no = 0;
  for (char *p = text, *end = text + len; p < end && rc == PT_OK;) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *stop = nl ? nl : end;
    line_no++;
    const char *q = p;
    while (q < stop && (*q == ' ' || *q == '\r' || *q == '\t')) q++;
    if (q < stop) {
      pt__json *j;
      rc = pt__json_parse(p, stop - p, &j, err);
      if (rc == PT_OK && j->type != PT__JSON_OBJECT) {
        rc = pt__errorf(err, PT_EFORMAT, "an action must be a JSON object");
        pt__json_free(j);
      } else if (rc == PT_OK) {
        const char *bad = "out of memory";
        rc = apply_json_action(st, j, &bad);
        if (rc != PT_OK) rc = pt__errorf(err, rc, "%s", bad);
        pt__json_free(j);
      }
      if (rc != PT_OK) pt__error_prefix(err, rc, "'%s' line %lld: ", path, (long long)line_no);
    }
    p = stop + 1;
  }
  pt__free(text);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Parquet checkpoints */

static const pt__view *vchild(const pt__view *v, const char *name) {
  if (!v) return NULL;
  for (int64_t i = 0; i < v->n_children; i++)
    if (v->schema->children[i]->name && strcmp(v->schema->children[i]->name, name) == 0)
      return &v->children[i];
  return NULL;
}

static bool is_string(const pt__view *v) {
  return v && (v->schema->format[0] == 'u' || v->schema->format[0] == 'U') && v->schema->format[1] == 0;
}

/* Row r (in v's own indexing) of a string column as a new string; NULL for
 * null. *oom set without memory. */
static char *vstr(const pt__view *v, int64_t r, bool *oom) {
  if (!is_string(v) || !pt__view_is_valid(v, r)) return NULL;
  int64_t len;
  const uint8_t *b = pt__view_get_bytes(v, r, &len);
  char *s = pt__malloc((size_t)len + 1);
  if (!s) {
    *oom = true;
    return NULL;
  }
  memcpy(s, b, (size_t)len);
  s[len] = '\0';
  return s;
}

static int64_t vint(const pt__view *v, int64_t r, int64_t dflt) {
  if (!v || !pt__view_is_valid(v, r)) return dflt;
  char f = v->schema->format[0];
  if ((f != 'i' && f != 'l' && f != 's' && f != 'c') || v->schema->format[1]) return dflt;
  return pt__view_get_int(v, r);
}

/* A list<string> (row r) as strings. */
static int vstrs(const pt__view *l, int64_t r, char ***out, int64_t *n) {
  *out = NULL;
  *n = 0;
  if (!l || !pt__view_is_valid(l, r) || l->n_children != 1 ||
      (strcmp(l->schema->format, "+l") != 0 && strcmp(l->schema->format, "+L") != 0))
    return PT_OK;
  int64_t a, b;
  pt__view_list_range(l, r, &a, &b);
  char **v = pt__calloc((size_t)(b - a > 0 ? b - a : 1), sizeof *v);
  if (!v) return PT_ENOMEM;
  bool oom = false;
  for (int64_t i = a; i < b; i++) {
    v[*n] = vstr(&l->children[0], i, &oom);
    if (oom) {
      free_strs(v, *n);
      *n = 0;
      return PT_ENOMEM;
    }
    if (!v[*n]) v[*n] = pt__strdup("");
    if (!v[*n]) {
      free_strs(v, *n);
      *n = 0;
      return PT_ENOMEM;
    }
    (*n)++;
  }
  *out = v;
  return PT_OK;
}

/* A map<string,string> (row r) as keys and values. */
static int vmap(const pt__view *m, int64_t r, char ***keys, char ***vals, int64_t *n) {
  *keys = *vals = NULL;
  *n = 0;
  if (!m || !pt__view_is_valid(m, r) || strcmp(m->schema->format, "+m") != 0 ||
      m->n_children != 1 || m->children[0].n_children != 2)
    return PT_OK;
  int64_t a, b;
  pt__view_list_range(m, r, &a, &b);
  const pt__view *entries = &m->children[0];
  const pt__view *kv = &entries->children[0], *vv = &entries->children[1];
  size_t cap = (size_t)(b - a > 0 ? b - a : 1);
  char **k = pt__calloc(cap, sizeof *k), **v = pt__calloc(cap, sizeof *v);
  bool oom = !k || !v;
  for (int64_t i = a; i < b && !oom; i++) {
    int64_t row = entries->offset + i;
    k[*n] = vstr(kv, row, &oom);
    if (!oom && !k[*n]) k[*n] = pt__strdup(""), oom = !k[*n];
    if (!oom) v[*n] = vstr(vv, row, &oom);
    (*n)++;
  }
  if (oom) {
    free_strs(k, *n);
    free_strs(v, *n);
    *n = 0;
    return PT_ENOMEM;
  }
  *keys = k;
  *vals = v;
  return PT_OK;
}

static int apply_checkpoint_batch(state *st, const struct ArrowSchema *schema,
                                  const struct ArrowArray *batch, const char **bad) {
  pt__view root;
  pt_error verr;
  if (pt_array_validate(schema, batch, &verr) != PT_OK) {
    *bad = "its batch does not validate";
    return PT_EFORMAT;
  }
  if (pt__view_init(&root, schema, batch, &verr) != PT_OK) {
    *bad = "its batch cannot be read";
    return PT_EFORMAT;
  }
  const pt__view *add = vchild(&root, "add"), *meta = vchild(&root, "metaData"),
                 *proto = vchild(&root, "protocol"), *txn = vchild(&root, "txn"),
                 *dom = vchild(&root, "domainMetadata");
  int rc = PT_OK;
  for (int64_t i = 0; i < root.length && rc == PT_OK; i++) {
    int64_t r = root.offset + i; /* a struct's children are indexed with its offset */
    bool oom = false;
    if ((txn && pt__view_is_valid(txn, r)) || (dom && pt__view_is_valid(dom, r)))
      st->s->has_txn = true;
    if (add && pt__view_is_valid(add, r)) {
      int64_t ar = add->offset + r;
      const pt__view *dv = vchild(add, "deletionVector");
      if (dv && pt__view_is_valid(dv, ar)) {
        *bad = "an add action with a deletion vector (reader feature deletionVectors)";
        rc = PT_ENOTSUP;
        break;
      }
      char *path = vstr(vchild(add, "path"), ar, &oom);
      char *stats = oom ? NULL : vstr(vchild(add, "stats"), ar, &oom);
      char **keys = NULL, **vals = NULL;
      int64_t nv = 0;
      if (!oom && vmap(vchild(add, "partitionValues"), ar, &keys, &vals, &nv) != PT_OK) oom = true;
      if (oom || !path) {
        pt__free(path);
        pt__free(stats);
        free_strs(keys, nv);
        free_strs(vals, nv);
        if (!oom) *bad = "an add action without a path";
        rc = oom ? PT_ENOMEM : PT_EFORMAT;
        break;
      }
      rc = state_add(st, path, vint(vchild(add, "size"), ar, -1),
                     vint(vchild(add, "modificationTime"), ar, 0), keys, vals, nv, stats);
    }
    if (rc == PT_OK && meta && pt__view_is_valid(meta, r)) {
      int64_t mr = meta->offset + r;
      char *schema_s = vstr(vchild(meta, "schemaString"), mr, &oom);
      char *id = oom ? NULL : vstr(vchild(meta, "id"), mr, &oom);
      char **pcols = NULL, **ck = NULL, **cv = NULL;
      int64_t npc = 0, nc = 0;
      if (!oom && vstrs(vchild(meta, "partitionColumns"), mr, &pcols, &npc) != PT_OK) oom = true;
      if (!oom && vmap(vchild(meta, "configuration"), mr, &ck, &cv, &nc) != PT_OK) oom = true;
      char *cmap = NULL;
      bool append_only = false;
      for (int64_t k = 0; !oom && k < nc; k++) {
        if (strcmp(ck[k], "delta.columnMapping.mode") == 0 && cv[k] && !cmap)
          oom = !(cmap = pt__strdup(cv[k]));
        if (strcmp(ck[k], "delta.appendOnly") == 0 && cv[k]) append_only = strcmp(cv[k], "true") == 0;
      }
      if (!oom && !id) id = pt__strdup(""), oom = !id;
      if (oom || !schema_s) {
        free_strs(ck, nc);
        free_strs(cv, nc);
        pt__free(schema_s);
        pt__free(id);
        pt__free(cmap);
        free_strs(pcols, npc);
        if (!oom) *bad = "a metaData action without a schemaString";
        rc = oom ? PT_ENOMEM : PT_EFORMAT;
        break;
      }
      set_meta(st, id, schema_s, pcols, npc, cmap, append_only, ck, cv, nc,
               vint(vchild(meta, "createdTime"), mr, -1));
    }
    if (rc == PT_OK && proto && pt__view_is_valid(proto, r)) {
      int64_t pr = proto->offset + r;
      char **rf = NULL, **wf = NULL;
      int64_t nrf = 0, nwf = 0;
      if (vstrs(vchild(proto, "readerFeatures"), pr, &rf, &nrf) != PT_OK ||
          vstrs(vchild(proto, "writerFeatures"), pr, &wf, &nwf) != PT_OK) {
        free_strs(rf, nrf);
        rc = PT_ENOMEM;
        break;
      }
      rc = set_protocol(st, vint(vchild(proto, "minReaderVersion"), pr, 1),
                        vint(vchild(proto, "minWriterVersion"), pr, 2), rf, nrf, wf, nwf);
    }
  }
  pt__view_reset(&root);
  return rc;
}

static int apply_checkpoint_file(state *st, const char *path, pt_error *err) {
  struct ArrowArrayStream stream;
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  o.plain_binary = 1; /* utf8 whatever the writer stored (views, large strings) */
  int rc = pt_parquet_read_path(path, &o, &stream, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "checkpoint '%s': ", path);
  struct ArrowSchema schema;
  if (stream.get_schema(&stream, &schema) != 0) {
    rc = pt__errorf(err, PT_EFORMAT, "checkpoint '%s': %s", path, stream.get_last_error(&stream));
    stream.release(&stream);
    return rc;
  }
  for (;;) {
    struct ArrowArray batch;
    if (stream.get_next(&stream, &batch) != 0) {
      rc = pt__errorf(err, PT_EFORMAT, "checkpoint '%s': %s", path, stream.get_last_error(&stream));
      break;
    }
    if (!batch.release) break;
    const char *bad = "out of memory";
    rc = apply_checkpoint_batch(st, &schema, &batch, &bad);
    batch.release(&batch);
    if (rc != PT_OK) {
      rc = pt__errorf(err, rc, "checkpoint '%s': %s", path, bad);
      break;
    }
  }
  schema.release(&schema);
  stream.release(&stream);
  return rc;
}

/* ------------------------------------------------------------------------ */

void pt__delta_snapshot_free(pt__delta_snapshot *s) {
  if (!s) return;
  for (int64_t i = 0; i < s->n_files; i++) {
    for (int64_t k = 0; s->files[i].values && k < s->n_partition_columns; k++)
      pt__free(s->files[i].values[k]);
    pt__free(s->files[i].values);
    s->files[i].values = NULL;
    file_free(&s->files[i], 0);
  }
  pt__free(s->files);
  free_strs(s->reader_features, s->n_reader_features);
  free_strs(s->writer_features, s->n_writer_features);
  pt__free(s->table_id);
  pt__free(s->schema_string);
  free_strs(s->partition_columns, s->n_partition_columns);
  pt__free(s->column_mapping);
  free_strs(s->config_keys, s->n_config);
  free_strs(s->config_values, s->n_config);
  memset(s, 0, sizeof *s);
}

/* Files compacted (removed ones dropped, order kept) and their partition
 * values ordered as the partition columns. */
static int finish(state *st) {
  pt__delta_snapshot *s = st->s;
  int64_t nk = s->n_partition_columns, o = 0;
  int rc = PT_OK;
  for (int64_t i = 0; i < s->n_files; i++) {
    pt__delta_file f = s->files[i];
    if (!f.path) continue;
    pending_values *pv = (pending_values *)f.pending;
    f.pending = NULL;
    if (rc == PT_OK) {
      f.values = pt__calloc((size_t)(nk ? nk : 1), sizeof *f.values);
      if (!f.values) rc = PT_ENOMEM;
      for (int64_t k = 0; k < nk && rc == PT_OK; k++)
        for (int64_t j = 0; pv && j < pv->n; j++)
          if (strcmp(pv->keys[j], s->partition_columns[k]) == 0) {
            f.values[k] = pv->vals[j];
            pv->vals[j] = NULL;
            break;
          }
    }
    pending_free(pv);
    s->files[o++] = f;
  }
  s->n_files = o;
  return rc;
}

static int64_t mtime_ms(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) return INT64_MIN;
  return (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
}

int pt__delta_snapshot_load(const char *table, int64_t version, int64_t timestamp_ms,
                            pt__delta_snapshot *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  char log[PATH_MAX], path[PATH_MAX + 128];
  if (snprintf(log, sizeof log, "%s/_delta_log", table) >= (int)sizeof log)
    return pt__errorf(err, PT_EINVAL, "table path too long");
  listing l;
  PT_RETURN_NOT_OK(list_log(log, &l, err));
  int rc = PT_OK;
  int64_t latest = l.n > 0 ? l.versions[l.n - 1] : -1;
  for (int64_t i = 0; i < l.n_cps; i++)
    if (l.cps[i].version > latest && l.cps[i].seen == l.cps[i].parts) latest = l.cps[i].version;
  if (latest < 0) {
    listing_free(&l);
    return pt__errorf(err, PT_EINVAL, "'%s' is not a Delta table: '%s' holds no commits", table, log);
  }
  int64_t target = latest;
  if (timestamp_ms != INT64_MIN) {
    /* The latest commit at or before the time. */
    target = -1;
    int64_t first_ts = INT64_MIN;
    for (int64_t i = 0; i < l.n; i++) {
      snprintf(path, sizeof path, "%s/%020lld.json", log, (long long)l.versions[i]);
      int64_t ts = mtime_ms(path);
      if (i == 0) first_ts = ts;
      if (ts != INT64_MIN && ts <= timestamp_ms) target = l.versions[i];
    }
    if (target < 0) {
      listing_free(&l);
      return pt__errorf(err, PT_EINVAL,
                        "no version of '%s' was committed at or before timestamp %lld ms; the "
                        "first commit kept is from %lld ms",
                        table, (long long)timestamp_ms, (long long)first_ts);
    }
  } else if (version >= 0) {
    if (version > latest) {
      listing_free(&l);
      return pt__errorf(err, PT_EINVAL, "'%s' has no version %lld; its latest is %lld", table,
                        (long long)version, (long long)latest);
    }
    target = version;
  }
  /* The checkpoint: _last_checkpoint's when it is usable, else the newest
   * complete one at or below the target. */
  int64_t cp = -1, cp_parts = 1;
  snprintf(path, sizeof path, "%s/_last_checkpoint", log);
  char *lc;
  int64_t lc_len;
  struct stat sb;
  if (stat(path, &sb) == 0) {
    rc = read_file(path, &lc, &lc_len, err);
    pt__json *j = NULL;
    if (rc == PT_OK) {
      rc = pt__json_parse(lc, lc_len, &j, err);
      pt__free(lc);
      if (rc != PT_OK) pt__error_prefix(err, rc, "'%s': ", path);
    }
    if (rc == PT_OK) {
      const pt__json *v = pt__json_get(j, "version"), *parts = pt__json_get(j, "parts");
      if (!v || v->type != PT__JSON_NUMBER || !v->is_int)
        rc = pt__errorf(err, PT_EFORMAT, "'%s': no version", path);
      else if (v->i <= target) {
        int64_t want = parts && parts->type == PT__JSON_NUMBER ? parts->i : 1;
        for (int64_t i = 0; i < l.n_cps; i++)
          if (l.cps[i].version == v->i && l.cps[i].parts == want && l.cps[i].seen == want) {
            cp = v->i;
            cp_parts = want;
          }
      }
    }
    pt__json_free(j);
  }
  for (int64_t i = 0; i < l.n_cps && rc == PT_OK; i++)
    if (l.cps[i].version <= target && l.cps[i].version > cp && l.cps[i].seen == l.cps[i].parts) {
      cp = l.cps[i].version;
      cp_parts = l.cps[i].parts;
    }
  state st = {.s = out};
  out->checkpoint = cp;
  if (rc == PT_OK && cp >= 0) {
    for (int64_t part = 1; part <= cp_parts && rc == PT_OK; part++) {
      if (cp_parts == 1)
        snprintf(path, sizeof path, "%s/%020lld.checkpoint.parquet", log, (long long)cp);
      else
        snprintf(path, sizeof path, "%s/%020lld.checkpoint.%010lld.%010lld.parquet", log,
                 (long long)cp, (long long)part, (long long)cp_parts);
      rc = apply_checkpoint_file(&st, path, err);
    }
  }
  /* Every commit after the checkpoint must be there, in order. */
  int64_t next = cp + 1, i = 0;
  while (i < l.n && l.versions[i] < next) i++;
  for (; rc == PT_OK && next <= target; next++, i++) {
    snprintf(path, sizeof path, "%s/%020lld.json", log, (long long)next);
    if (i >= l.n || l.versions[i] != next) {
      rc = pt__errorf(err, PT_EFORMAT,
                      "the log of '%s' is incomplete: commit '%s' is missing%s", table, path,
                      cp < 0 ? " and no checkpoint covers it" : "");
      break;
    }
    rc = apply_commit(&st, path, err);
  }
  if (rc == PT_ENOMEM) pt__errorf(err, PT_ENOMEM, "out of memory");
  if (rc == PT_OK && !st.have_meta)
    rc = pt__errorf(err, PT_EFORMAT, "the log of '%s' has no metaData action up to version %lld",
                    table, (long long)target);
  if (rc == PT_OK && !st.have_protocol)
    rc = pt__errorf(err, PT_EFORMAT, "the log of '%s' has no protocol action up to version %lld",
                    table, (long long)target);
  if (rc == PT_OK) {
    out->version = target;
    rc = finish(&st);
    if (rc != PT_OK) pt__errorf(err, rc, "out of memory");
  } else {
    /* Unfinished: values are still pending pairs. */
    for (int64_t f = 0; f < out->n_files; f++) {
      pending_free((pending_values *)out->files[f].pending);
      out->files[f].pending = NULL;
    }
  }
  pt__free(st.slots);
  listing_free(&l);
  if (rc != PT_OK) pt__delta_snapshot_free(out);
  return rc;
}

/* ------------------------------------------------------------------------ */

int pt__delta_check_protocol(const pt__delta_snapshot *s, bool write, pt_error *err) {
  /* Reader features with nothing to do on read, and the writer features a
   * plain append or overwrite honours by what it writes. */
  static const char *const readable[] = {"timestampNtz", "vacuumProtocolCheck", NULL};
  static const char *const writable[] = {"appendOnly", "invariants", "timestampNtz", NULL};
  if (s->min_reader > 3)
    return pt__errorf(err, PT_ENOTSUP, "the table needs Delta reader version %lld; protium reads "
                      "versions 1 to 3", (long long)s->min_reader);
  if (s->min_reader == 3)
    for (int64_t i = 0; i < s->n_reader_features; i++) {
      bool ok = false;
      for (int k = 0; readable[k]; k++) ok = ok || strcmp(readable[k], s->reader_features[i]) == 0;
      if (!ok)
        return pt__errorf(err, PT_ENOTSUP,
                          "the table uses the Delta reader feature '%s', which protium does not "
                          "support", s->reader_features[i]);
    }
  if (s->column_mapping && strcmp(s->column_mapping, "none") != 0)
    return pt__errorf(err, PT_ENOTSUP, "the table uses the Delta reader feature 'columnMapping' "
                      "(mode %s), which protium does not support", s->column_mapping);
  if (!write) return PT_OK;
  if (s->min_writer > 7 || (s->min_writer > 2 && s->min_writer < 7))
    return pt__errorf(err, PT_ENOTSUP, "the table needs Delta writer version %lld; protium writes "
                      "versions 1, 2 and 7 (with the features appendOnly, invariants, "
                      "timestampNtz)", (long long)s->min_writer);
  for (int64_t i = 0; s->min_writer == 7 && i < s->n_writer_features; i++) {
    bool ok = false;
    for (int k = 0; writable[k]; k++) ok = ok || strcmp(writable[k], s->writer_features[i]) == 0;
    if (!ok)
      return pt__errorf(err, PT_ENOTSUP,
                        "the table uses the Delta writer feature '%s', which protium does not "
                        "support", s->writer_features[i]);
  }
  return PT_OK;
}

static int hexv(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *pt__delta_unescape_path(const char *path) {
  size_t n = strlen(path);
  char *out = pt__malloc(n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (path[i] == '%' && i + 2 < n && hexv(path[i + 1]) >= 0 && hexv(path[i + 2]) >= 0) {
      out[o++] = (char)(hexv(path[i + 1]) * 16 + hexv(path[i + 2]));
      i += 2;
    } else {
      out[o++] = path[i];
    }
  }
  out[o] = '\0';
  return out;
}
