/* test-worker.c: the engine worker runs jobs in order in one other thread, coalesces a
 * flood of progress into one callback per main-loop dispatch, cancels queued and running
 * jobs, and frees while a job runs without calling back. */
#include "cs-config.h"

#include <gio/gio.h>

#include "engine/cs-worker.h"
#include "io/cs-case.h"
#include "io/cs-paths.h"

typedef struct
{
  GThread *main_thread;
  GArray  *done_ids;
  GArray  *done_values;
  GArray  *done_cancelled;
  guint    n_progress;
  double   last_fraction;
  char    *last_stage;
} Fixture;

static void
on_progress (CsWorker *worker, guint job_id, const char *stage, double fraction,
             const char *message, gpointer user_data)
{
  Fixture *f = user_data;
  g_assert_true (g_thread_self () == f->main_thread);
  f->n_progress++;
  f->last_fraction = fraction;
  g_free (f->last_stage);
  f->last_stage = g_strdup (stage);
}

static void
on_done (CsWorker *worker, guint job_id, gpointer result, const GError *error,
         gpointer user_data)
{
  Fixture *f = user_data;
  g_assert_true (g_thread_self () == f->main_thread);
  g_array_append_val (f->done_ids, job_id);
  int value = result != NULL ? *(int *) result : -1;
  g_array_append_val (f->done_values, value);
  gboolean cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_array_append_val (f->done_cancelled, cancelled);
  g_free (result);
}

/* Squares its input in the worker thread, reporting N_REPORTS times on the way. */
typedef struct
{
  int      input;
  int      n_reports;
  GThread *main_thread;
  gboolean wait_for_cancel;
} SquareJob;

static gpointer
square_job (CsWorkerJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  SquareJob *sj = data;
  g_assert_true (g_thread_self () != sj->main_thread);
  for (int i = 1; i <= sj->n_reports; i++)
    cs_worker_job_report (job, "squaring", (double) i / sj->n_reports, NULL);
  if (sj->wait_for_cancel)
    while (!g_cancellable_is_cancelled (cancellable))
      g_usleep (1000);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  int *out = g_new (int, 1);
  *out = sj->input * sj->input;
  return out;
}

static guint
submit_square (CsWorker *worker, Fixture *f, int input, int n_reports, gboolean wait)
{
  SquareJob *sj = g_new0 (SquareJob, 1);
  sj->input = input;
  sj->n_reports = n_reports;
  sj->main_thread = f->main_thread;
  sj->wait_for_cancel = wait;
  return cs_worker_submit (worker, "square", square_job, sj, g_free, g_free, on_done, f);
}

static void
fixture_init (Fixture *f)
{
  f->main_thread = g_thread_self ();
  f->done_ids = g_array_new (FALSE, FALSE, sizeof (guint));
  f->done_values = g_array_new (FALSE, FALSE, sizeof (int));
  f->done_cancelled = g_array_new (FALSE, FALSE, sizeof (gboolean));
}

static void
fixture_clear (Fixture *f)
{
  g_array_unref (f->done_ids);
  g_array_unref (f->done_values);
  g_array_unref (f->done_cancelled);
  g_free (f->last_stage);
}

static void
iterate_until (Fixture *f, guint n_done)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (f->done_ids->len < n_done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (f->done_ids->len, ==, n_done);
}

static void
test_jobs_in_order_with_results (void)
{
  Fixture f = { 0 };
  fixture_init (&f);
  CsWorker *worker = cs_worker_new (NULL, on_progress, &f);

  guint a = submit_square (worker, &f, 3, 0, FALSE);
  guint b = submit_square (worker, &f, 7, 0, FALSE);
  g_assert_cmpuint (a, >, 0);
  g_assert_cmpuint (b, >, a);
  iterate_until (&f, 2);
  g_assert_cmpuint (g_array_index (f.done_ids, guint, 0), ==, a);
  g_assert_cmpuint (g_array_index (f.done_ids, guint, 1), ==, b);
  g_assert_cmpint (g_array_index (f.done_values, int, 0), ==, 9);
  g_assert_cmpint (g_array_index (f.done_values, int, 1), ==, 49);
  g_assert_cmpuint (cs_worker_get_n_jobs (worker), ==, 0);
  cs_worker_free (worker);
  fixture_clear (&f);
}

static void
test_progress_is_coalesced (void)
{
  Fixture f = { 0 };
  fixture_init (&f);
  CsWorker *worker = cs_worker_new (NULL, on_progress, &f);

  /* 20000 reports and a job that then waits: with the main loop not running meanwhile, the
   * UI must hear of them once, with the newest value. */
  guint id = submit_square (worker, &f, 2, 20000, TRUE);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (cs_worker_get_running (worker) != id && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_usleep (200 * 1000);  /* the reports are cheap: all written by now */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (f.n_progress, ==, 1);
  g_assert_cmpfloat (f.last_fraction, ==, 1.0);
  g_assert_cmpstr (f.last_stage, ==, "squaring");

  g_assert_true (cs_worker_cancel (worker, id));
  iterate_until (&f, 1);
  g_assert_true (g_array_index (f.done_cancelled, gboolean, 0));
  g_assert_cmpint (g_array_index (f.done_values, int, 0), ==, -1);
  g_assert_false (cs_worker_cancel (worker, id));
  cs_worker_free (worker);
  fixture_clear (&f);
}

static void
test_cancel_queued_job (void)
{
  Fixture f = { 0 };
  fixture_init (&f);
  CsWorker *worker = cs_worker_new (NULL, on_progress, &f);

  guint running = submit_square (worker, &f, 5, 0, TRUE);
  guint queued = submit_square (worker, &f, 6, 0, FALSE);
  g_assert_true (cs_worker_cancel (worker, queued));
  iterate_until (&f, 1);
  g_assert_cmpuint (g_array_index (f.done_ids, guint, 0), ==, queued);
  g_assert_true (g_array_index (f.done_cancelled, gboolean, 0));
  g_assert_true (cs_worker_cancel (worker, running));
  iterate_until (&f, 2);
  g_assert_cmpuint (g_array_index (f.done_ids, guint, 1), ==, running);
  g_assert_true (g_array_index (f.done_cancelled, gboolean, 1));
  cs_worker_free (worker);
  fixture_clear (&f);
}

static void
test_free_while_running (void)
{
  Fixture f = { 0 };
  fixture_init (&f);
  CsWorker *worker = cs_worker_new (NULL, on_progress, &f);

  submit_square (worker, &f, 5, 10, TRUE);
  submit_square (worker, &f, 6, 0, FALSE);
  g_usleep (50 * 1000);
  gint64 start = g_get_monotonic_time ();
  cs_worker_free (worker);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  /* No callback after free, even with the main loop running. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (f.done_ids->len, ==, 0);
  fixture_clear (&f);
}

static CsDetection *detected;

static void
on_detect_done (CsWorker *worker, guint job_id, gpointer result, const GError *error,
                gpointer user_data)
{
  g_assert_no_error ((GError *) error);
  detected = result;
  *(gboolean *) user_data = TRUE;
}

/* A detection through the worker is the pipeline's own, reported on the main thread. */
static void
test_detect_job_matches_pipeline (void)
{
  g_autofree char *samples = cs_data_find ("samples");
  if (samples == NULL)
    {
      g_test_skip ("the bundled sample folder is not built");
      return;
    }
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) cases = cs_case_discover (samples, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cases->len, >, 0);
  const CsCase *first = g_ptr_array_index (cases, 0);
  CsDetectOptions options;
  cs_detect_options_init (&options);
  options.detector = CS_DETECTOR_ZSCORE;

  Fixture f = { 0 };
  fixture_init (&f);
  CsWorker *worker = cs_worker_new (NULL, on_progress, &f);
  gboolean done = FALSE;
  guint id = cs_worker_submit_detect (worker, first, NULL, &options, on_detect_done, &done);
  g_assert_cmpuint (id, >, 0);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (done);
  g_assert_nonnull (detected);

  g_autoptr(CsDetection) direct = cs_pipeline_detect_case (first, NULL, &options, NULL, NULL,
                                                           NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (detected->patient_score, ==, direct->patient_score);
  g_assert_cmpint (detected->slice_index, ==, direct->slice_index);
  g_assert_cmpstr (detected->case_name, ==, first->name);
  g_clear_pointer (&detected, cs_detection_free);
  cs_worker_free (worker);
  fixture_clear (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/worker/jobs-in-order-with-results", test_jobs_in_order_with_results);
  g_test_add_func ("/worker/progress-is-coalesced", test_progress_is_coalesced);
  g_test_add_func ("/worker/cancel-queued-job", test_cancel_queued_job);
  g_test_add_func ("/worker/free-while-running", test_free_while_running);
  g_test_add_func ("/worker/detect-job-matches-pipeline", test_detect_job_matches_pipeline);
  return g_test_run ();
}
