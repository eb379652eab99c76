/* jobs.c — the metrics of finished jobs as the user reads them: each action
 * hands its job's pt_job_stats to the session, which keeps the last
 * PT__JOBS_KEPT; pt_dataset_last_job and pt_session_job_stats copy one out.
 */
#include <string.h>

#include "api/api_int.h"

void pt__session_record_job(pt_dataset *ds, pt__job_result *res) {
  pt_job_stats *st = res->stats;
  res->stats = NULL;
  if (!st) return;
  pt_session *s = ds->session;
  atomic_store(&ds->last_job, st->job_id);
  pthread_mutex_lock(&s->jobs_mu);
  pt_job_stats **slot = &s->jobs[s->jobs_seen++ % PT__JOBS_KEPT];
  pt_job_stats *old = *slot;
  *slot = st;
  pthread_mutex_unlock(&s->jobs_mu);
  pt_job_stats_free(old);
}

int pt_session_job_stats(pt_session *s, int64_t job_id, pt_job_stats **out, pt_error *err) {
  if (!s || !out || job_id < 0)
    return pt__errorf(err, PT_EINVAL, "job_stats: session and out must be given, job_id >= 0");
  *out = NULL;
  pthread_mutex_lock(&s->jobs_mu);
  const pt_job_stats *found = NULL;
  int64_t newest = -1;
  for (int i = 0; i < PT__JOBS_KEPT; i++) {
    const pt_job_stats *j = s->jobs[i];
    if (!j) continue;
    if (job_id ? j->job_id == job_id : j->job_id > newest) found = j;
    if (j->job_id > newest) newest = j->job_id;
  }
  int rc = PT_OK;
  if (found && job_id == 0) {
    /* the last finished: the one recorded last */
    found = s->jobs[(s->jobs_seen - 1) % PT__JOBS_KEPT];
  }
  if (found) {
    rc = pt__stats_copy(found, out);
    if (rc != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "job_stats: out of memory");
  } else if (job_id == 0 || s->jobs_seen == 0) {
    rc = pt__errorf(err, PT_ESTATE, "job_stats: no job of this session has finished yet");
  } else if (job_id <= newest) {
    rc = pt__errorf(err, PT_ERANGE,
                    "job_stats: job %lld is older than the %d jobs whose metrics are kept",
                    (long long)job_id, PT__JOBS_KEPT);
  } else {
    rc = pt__errorf(err, PT_ESTATE, "job_stats: job %lld has not finished (or does not exist)",
                    (long long)job_id);
  }
  pthread_mutex_unlock(&s->jobs_mu);
  return rc;
}

int pt_dataset_last_job(pt_dataset *ds, pt_job_stats **out, pt_error *err) {
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "last_job: dataset and out must be given");
  *out = NULL;
  int64_t id = atomic_load(&ds->last_job);
  if (id == 0)
    return pt__errorf(err, PT_ESTATE, "last_job: no action has run on this dataset yet");
  return pt_session_job_stats(ds->session, id, out, err);
}
