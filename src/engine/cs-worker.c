/* cs-worker.c: one thread running jobs in order; progress and results go to the main
 * context through one idle source at a time (GLib only). */
#include "cs-config.h"

#include "engine/cs-worker.h"

struct _CsWorkerJob
{
  guint            id;
  char            *kind;
  CsWorkerJobFunc  func;
  gpointer         data;
  GDestroyNotify   data_free;
  GDestroyNotify   result_free;
  CsWorkerDoneFunc done;
  gpointer         done_data;
  GCancellable    *cancellable;
  CsWorker        *worker;
  gpointer         result;
  GError          *error;
};

struct _CsWorker
{
  GMutex                lock;
  GCond                 wake;
  GQueue                pending;    /* CsWorkerJob*, oldest first */
  CsWorkerJob          *running;
  GQueue                finished;   /* waiting for the idle to report them */
  gboolean              quit;
  guint                 next_id;
  GThread              *thread;

  GMainContext         *context;
  GSource              *idle;       /* the one scheduled idle, or NULL */
  CsWorkerProgressFunc  progress;
  gpointer              progress_data;

  /* The latest progress report, overwritten by newer ones until the idle reads it. */
  gboolean              progress_dirty;
  guint                 progress_job;
  char                 *stage;
  double                fraction;
  char                 *message;
};

static void
cs_worker_job_free (CsWorkerJob *job)
{
  if (job->data_free != NULL && job->data != NULL)
    job->data_free (job->data);
  if (job->result_free != NULL && job->result != NULL)
    job->result_free (job->result);
  g_clear_error (&job->error);
  g_clear_object (&job->cancellable);
  g_free (job->kind);
  g_free (job);
}

static gboolean
cs_worker_idle (gpointer user_data)
{
  CsWorker *self = user_data;
  GQueue finished = G_QUEUE_INIT;
  gboolean report = FALSE;
  guint job_id = 0;
  g_autofree char *stage = NULL;
  g_autofree char *message = NULL;
  double fraction = 0.0;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->idle, g_source_unref);
  if (self->progress_dirty)
    {
      report = TRUE;
      job_id = self->progress_job;
      stage = g_steal_pointer (&self->stage);
      message = g_steal_pointer (&self->message);
      fraction = self->fraction;
      self->progress_dirty = FALSE;
    }
  finished = self->finished;
  g_queue_init (&self->finished);
  g_mutex_unlock (&self->lock);

  /* Progress of a job that has finished meanwhile is stale: its done callback follows. */
  gboolean job_done = FALSE;
  for (GList *l = finished.head; l != NULL; l = l->next)
    if (((CsWorkerJob *) l->data)->id == job_id)
      job_done = TRUE;
  if (report && !job_done && self->progress != NULL)
    self->progress (self, job_id, stage, fraction, message, self->progress_data);

  CsWorkerJob *job;
  while ((job = g_queue_pop_head (&finished)) != NULL)
    {
      if (job->done != NULL)
        job->done (self, job->id, g_steal_pointer (&job->result), job->error, job->done_data);
      cs_worker_job_free (job);
    }
  return G_SOURCE_REMOVE;
}

/* With the lock held. */
static void
cs_worker_schedule_idle (CsWorker *self)
{
  if (self->idle != NULL)
    return;
  self->idle = g_idle_source_new ();
  g_source_set_priority (self->idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->idle, cs_worker_idle, self, NULL);
  g_source_set_static_name (self->idle, "[cordscope] engine worker");
  g_source_attach (self->idle, self->context);
}

static gpointer
cs_worker_thread (gpointer user_data)
{
  CsWorker *self = user_data;

  g_mutex_lock (&self->lock);
  for (;;)
    {
      while (!self->quit && g_queue_is_empty (&self->pending))
        g_cond_wait (&self->wake, &self->lock);
      if (self->quit)
        break;
      CsWorkerJob *job = g_queue_pop_head (&self->pending);
      self->running = job;
      g_mutex_unlock (&self->lock);

      GError *error = NULL;
      if (!g_cancellable_set_error_if_cancelled (job->cancellable, &error))
        job->result = job->func (job, job->data, job->cancellable, &error);
      if (job->result == NULL && error == NULL)
        g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "Job “%s” failed", job->kind);
      if (job->result != NULL && g_cancellable_is_cancelled (job->cancellable))
        {
          /* Cancelled after its last check: the caller asked for nothing, it gets nothing. */
          job->result_free (job->result);
          job->result = NULL;
          g_clear_error (&error);
          g_cancellable_set_error_if_cancelled (job->cancellable, &error);
        }
      job->error = error;
      if (job->data_free != NULL && job->data != NULL)
        job->data_free (job->data);
      job->data = NULL;

      g_mutex_lock (&self->lock);
      self->running = NULL;
      g_queue_push_tail (&self->finished, job);
      cs_worker_schedule_idle (self);
    }
  g_mutex_unlock (&self->lock);
  return NULL;
}

CsWorker *
cs_worker_new (GMainContext         *context,
               CsWorkerProgressFunc  progress,
               gpointer              progress_data)
{
  CsWorker *self = g_new0 (CsWorker, 1);

  g_mutex_init (&self->lock);
  g_cond_init (&self->wake);
  g_queue_init (&self->pending);
  g_queue_init (&self->finished);
  self->next_id = 1;
  self->context = context != NULL ? g_main_context_ref (context)
                                  : g_main_context_ref_thread_default ();
  self->progress = progress;
  self->progress_data = progress_data;
  self->thread = g_thread_new ("cs-engine-worker", cs_worker_thread, self);
  return self;
}

void
cs_worker_free (CsWorker *self)
{
  if (self == NULL)
    return;

  g_mutex_lock (&self->lock);
  self->quit = TRUE;
  if (self->running != NULL)
    g_cancellable_cancel (self->running->cancellable);
  g_cond_signal (&self->wake);
  g_mutex_unlock (&self->lock);
  g_thread_join (self->thread);

  if (self->idle != NULL)
    {
      g_source_destroy (self->idle);
      g_clear_pointer (&self->idle, g_source_unref);
    }
  g_queue_clear_full (&self->pending, (GDestroyNotify) cs_worker_job_free);
  g_queue_clear_full (&self->finished, (GDestroyNotify) cs_worker_job_free);
  g_main_context_unref (self->context);
  g_free (self->stage);
  g_free (self->message);
  g_cond_clear (&self->wake);
  g_mutex_clear (&self->lock);
  g_free (self);
}

guint
cs_worker_submit (CsWorker         *self,
                  const char       *kind,
                  CsWorkerJobFunc   func,
                  gpointer          job_data,
                  GDestroyNotify    data_free,
                  GDestroyNotify    result_free,
                  CsWorkerDoneFunc  done,
                  gpointer          done_data)
{
  g_return_val_if_fail (self != NULL && func != NULL && result_free != NULL, 0);

  CsWorkerJob *job = g_new0 (CsWorkerJob, 1);
  job->kind = g_strdup (kind != NULL ? kind : "job");
  job->func = func;
  job->data = job_data;
  job->data_free = data_free;
  job->result_free = result_free;
  job->done = done;
  job->done_data = done_data;
  job->cancellable = g_cancellable_new ();
  job->worker = self;

  g_mutex_lock (&self->lock);
  job->id = self->next_id++;
  g_queue_push_tail (&self->pending, job);
  g_cond_signal (&self->wake);
  g_mutex_unlock (&self->lock);
  return job->id;
}

gboolean
cs_worker_cancel (CsWorker *self,
                  guint     job_id)
{
  gboolean found = FALSE;

  g_return_val_if_fail (self != NULL, FALSE);

  g_mutex_lock (&self->lock);
  if (self->running != NULL && self->running->id == job_id)
    {
      g_cancellable_cancel (self->running->cancellable);
      found = TRUE;
    }
  for (GList *l = self->pending.head; l != NULL && !found; l = l->next)
    {
      CsWorkerJob *job = l->data;
      if (job->id != job_id)
        continue;
      /* Never started: it finishes now, cancelled, through the same idle as the rest. */
      g_queue_delete_link (&self->pending, l);
      g_cancellable_cancel (job->cancellable);
      g_cancellable_set_error_if_cancelled (job->cancellable, &job->error);
      g_queue_push_tail (&self->finished, job);
      cs_worker_schedule_idle (self);
      found = TRUE;
    }
  g_mutex_unlock (&self->lock);
  return found;
}

guint
cs_worker_get_running (CsWorker *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  guint id = self->running != NULL ? self->running->id : 0;
  g_mutex_unlock (&self->lock);
  return id;
}

guint
cs_worker_get_n_jobs (CsWorker *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  guint n = self->pending.length + (self->running != NULL ? 1 : 0);
  g_mutex_unlock (&self->lock);
  return n;
}

void
cs_worker_job_report (CsWorkerJob *job,
                      const char  *stage,
                      double       fraction,
                      const char  *message)
{
  CsWorker *self = job->worker;

  g_mutex_lock (&self->lock);
  self->progress_dirty = TRUE;
  self->progress_job = job->id;
  g_free (self->stage);
  self->stage = g_strdup (stage);
  g_free (self->message);
  self->message = g_strdup (message);
  self->fraction = fraction;
  cs_worker_schedule_idle (self);
  g_mutex_unlock (&self->lock);
}

guint
cs_worker_job_get_id (CsWorkerJob *job)
{
  return job->id;
}

/* ---- detection jobs ---- */

typedef struct
{
  CsCase          *cs_case;
  CsPipelineModel *model;
  CsDetectOptions  options;
} DetectJob;

static void
detect_job_free (DetectJob *dj)
{
  cs_case_free (dj->cs_case);
  g_free (dj);
}

static void
detect_job_progress (const char *stage,
                     double      fraction,
                     gpointer    user_data)
{
  cs_worker_job_report (user_data, stage, fraction, NULL);
}

static gpointer
detect_job_run (CsWorkerJob   *job,
                gpointer       data,
                GCancellable  *cancellable,
                GError       **error)
{
  DetectJob *dj = data;
  return cs_pipeline_detect_case (dj->cs_case, dj->model, &dj->options, cancellable,
                                  detect_job_progress, job, error);
}

static CsCase *
cs_case_copy (const CsCase *c)
{
  CsCase *copy = g_new0 (CsCase, 1);
  copy->name = g_strdup (c->name);
  copy->image_path = g_strdup (c->image_path);
  copy->seg_path = g_strdup (c->seg_path);
  copy->discs_path = g_strdup (c->discs_path);
  copy->lesion_path = g_strdup (c->lesion_path);
  copy->truth_path = g_strdup (c->truth_path);
  copy->vert_labels_path = g_strdup (c->vert_labels_path);
  copy->levels_path = g_strdup (c->levels_path);
  copy->sidecar_path = g_strdup (c->sidecar_path);
  copy->sidecar_target = g_strdup (c->sidecar_target);
  copy->subject = g_strdup (c->subject);
  copy->session = g_strdup (c->session);
  return copy;
}

guint
cs_worker_submit_detect (CsWorker              *self,
                         const CsCase          *cs_case,
                         CsPipelineModel       *model,
                         const CsDetectOptions *options,
                         CsWorkerDoneFunc       done,
                         gpointer               done_data)
{
  g_return_val_if_fail (self != NULL && cs_case != NULL && options != NULL, 0);

  DetectJob *dj = g_new0 (DetectJob, 1);
  dj->cs_case = cs_case_copy (cs_case);
  dj->model = model;
  dj->options = *options;
  return cs_worker_submit (self, "detect", detect_job_run, dj, (GDestroyNotify) detect_job_free,
                           (GDestroyNotify) cs_detection_free, done, done_data);
}
