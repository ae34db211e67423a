/* cs-pool.c: persistent worker threads woken per parallel loop (see cs-pool.h). */
#include "cs-pool.h"

struct _CsPool
{
  int         n_threads;
  GThread   **threads;
  GMutex      lock;
  GCond       wake;
  GCond       done;
  guint64     generation; /* bumped for every run, so a worker runs each job once */
  int         pending;    /* workers still running the current job */
  gboolean    quit;
  int         n_tasks;
  CsPoolFunc  func;
  void       *ctx;
  void      **scratch;       /* n_threads + 1 slots */
  size_t     *scratch_bytes;
};

typedef struct
{
  CsPool *pool;
  int     index;
} CsPoolWorker;

static void
cs_pool_range (const CsPool *pool, int index, int *begin, int *end)
{
  *begin = (int) ((gint64) pool->n_tasks * index / pool->n_threads);
  *end = (int) ((gint64) pool->n_tasks * (index + 1) / pool->n_threads);
}

static gpointer
cs_pool_worker (gpointer data)
{
  CsPoolWorker *worker = data;
  CsPool *pool = worker->pool;
  guint64 seen = 0;

  for (;;)
    {
      int begin, end;

      g_mutex_lock (&pool->lock);
      while (!pool->quit && pool->generation == seen)
        g_cond_wait (&pool->wake, &pool->lock);
      if (pool->quit)
        {
          g_mutex_unlock (&pool->lock);
          break;
        }
      seen = pool->generation;
      g_mutex_unlock (&pool->lock);

      cs_pool_range (pool, worker->index, &begin, &end);
      if (begin < end)
        pool->func (begin, end, worker->index, pool->ctx);

      g_mutex_lock (&pool->lock);
      if (--pool->pending == 0)
        g_cond_signal (&pool->done);
      g_mutex_unlock (&pool->lock);
    }
  g_free (worker);
  return NULL;
}

CsPool *
cs_pool_new (int n_threads)
{
  CsPool *pool = g_new0 (CsPool, 1);

  pool->n_threads = MAX (1, n_threads);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->wake);
  g_cond_init (&pool->done);
  pool->threads = g_new0 (GThread *, pool->n_threads);
  pool->scratch = g_new0 (void *, pool->n_threads + 1);
  pool->scratch_bytes = g_new0 (size_t, pool->n_threads + 1);
  for (int i = 1; i < pool->n_threads; i++)
    {
      CsPoolWorker *worker = g_new0 (CsPoolWorker, 1);
      worker->pool = pool;
      worker->index = i;
      pool->threads[i] = g_thread_new ("cs-pool", cs_pool_worker, worker);
    }
  return pool;
}

void
cs_pool_free (CsPool *pool)
{
  if (pool == NULL)
    return;
  g_mutex_lock (&pool->lock);
  pool->quit = TRUE;
  g_cond_broadcast (&pool->wake);
  g_mutex_unlock (&pool->lock);
  for (int i = 1; i < pool->n_threads; i++)
    g_thread_join (pool->threads[i]);
  g_free (pool->threads);
  for (int i = 0; i <= pool->n_threads; i++)
    g_aligned_free (pool->scratch[i]);
  g_free (pool->scratch);
  g_free (pool->scratch_bytes);
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->wake);
  g_cond_clear (&pool->done);
  g_free (pool);
}

int
cs_pool_n_threads (const CsPool *pool)
{
  return pool->n_threads;
}

void
cs_pool_run (CsPool *pool, int n_tasks, CsPoolFunc func, void *ctx)
{
  int begin, end;

  if (n_tasks <= 0)
    return;
  if (pool->n_threads == 1 || n_tasks == 1)
    {
      func (0, n_tasks, 0, ctx);
      return;
    }
  g_mutex_lock (&pool->lock);
  pool->n_tasks = n_tasks;
  pool->func = func;
  pool->ctx = ctx;
  pool->pending = pool->n_threads - 1;
  pool->generation++;
  g_cond_broadcast (&pool->wake);
  g_mutex_unlock (&pool->lock);

  cs_pool_range (pool, 0, &begin, &end);
  if (begin < end)
    func (begin, end, 0, ctx);

  g_mutex_lock (&pool->lock);
  while (pool->pending > 0)
    g_cond_wait (&pool->done, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

void *
cs_pool_scratch (CsPool *pool, int slot, size_t bytes)
{
  g_return_val_if_fail (slot >= 0 && slot <= pool->n_threads, NULL);
  if (pool->scratch_bytes[slot] < bytes)
    {
      g_aligned_free (pool->scratch[slot]);
      pool->scratch[slot] = g_aligned_alloc (bytes, 1, 64);
      pool->scratch_bytes[slot] = bytes;
    }
  return pool->scratch[slot];
}
