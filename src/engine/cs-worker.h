/* cs-worker.h: the engine worker (DESIGN.md "Threads"). One thread runs the submitted jobs
 * one after the other; the caller's main context hears of their progress and their end
 * through ONE coalesced idle callback, so a job that reports a thousand times a second
 * costs the main loop one dispatch per frame at most. No GTK here.
 *
 * Job functions run in the worker thread: they must not touch widgets, and should check
 * their cancellable between stages. Progress and done callbacks run on the main context
 * given at creation (the thread-default one by default). */
#pragma once

#include <gio/gio.h>

#include "engine/cs-pipeline.h"

G_BEGIN_DECLS

typedef struct _CsWorker    CsWorker;
typedef struct _CsWorkerJob CsWorkerJob;

/* Runs in the worker thread. Returns the job's result (owned by the done callback, freed
 * with the submit's result_free when nobody takes it), or NULL with ERROR set. */
typedef gpointer (*CsWorkerJobFunc)      (CsWorkerJob   *job,
                                          gpointer       job_data,
                                          GCancellable  *cancellable,
                                          GError       **error);
/* Runs on the main context with the latest progress of the running job (older reports
 * of the same job that the main loop had no time to show are skipped). */
typedef void     (*CsWorkerProgressFunc) (CsWorker      *worker,
                                          guint          job_id,
                                          const char    *stage,
                                          double         fraction,
                                          const char    *message,
                                          gpointer       user_data);
/* Runs on the main context once per job: RESULT (transfer full) or ERROR (owned by the
 * worker; G_IO_ERROR_CANCELLED for a cancelled job). */
typedef void     (*CsWorkerDoneFunc)     (CsWorker      *worker,
                                          guint          job_id,
                                          gpointer       result,
                                          const GError  *error,
                                          gpointer       user_data);

/* Starts the worker thread. CONTEXT: where callbacks run; NULL = thread-default. */
CsWorker *cs_worker_new          (GMainContext         *context,
                                  CsWorkerProgressFunc  progress,
                                  gpointer              progress_data);
/* Cancels every job, waits for the running one to return, drops pending callbacks. */
void      cs_worker_free         (CsWorker             *worker);

/* Queues a job; returns its id (> 0). JOB_DATA is freed with DATA_FREE in the worker. */
guint     cs_worker_submit       (CsWorker             *worker,
                                  const char           *kind,
                                  CsWorkerJobFunc       func,
                                  gpointer              job_data,
                                  GDestroyNotify        data_free,
                                  GDestroyNotify        result_free,
                                  CsWorkerDoneFunc      done,
                                  gpointer              done_data);
/* Cancels a queued or running job; its done callback still runs, with CANCELLED.
 * Returns FALSE when the id is unknown or already finished. */
gboolean  cs_worker_cancel       (CsWorker             *worker,
                                  guint                 job_id);
/* The id of the running job, 0 when idle. */
guint     cs_worker_get_running  (CsWorker             *worker);
/* Jobs queued or running. */
guint     cs_worker_get_n_jobs   (CsWorker             *worker);

/* Detection of one case (cs_pipeline_detect_case) as a job: progress is the pipeline's
 * (stage, fraction); DONE gets a CsDetection (free with cs_detection_free). CS_CASE and
 * OPTIONS are copied; MODEL (NULL for the z-score detector) must outlive the job. */
guint     cs_worker_submit_detect (CsWorker              *worker,
                                   const CsCase          *cs_case,
                                   CsPipelineModel       *model,
                                   const CsDetectOptions *options,
                                   CsWorkerDoneFunc       done,
                                   gpointer               done_data);

/* From inside a job: publishes its progress (FRACTION 0..1, or < 0 when unknown). */
void      cs_worker_job_report   (CsWorkerJob          *job,
                                  const char           *stage,
                                  double                fraction,
                                  const char           *message);
guint     cs_worker_job_get_id   (CsWorkerJob          *job);

G_END_DECLS
