/* cs-pool.h: a small persistent thread pool for the engine's parallel loops.
 *
 * cs_pool_run splits task indices 0..n_tasks-1 statically into n_threads contiguous
 * ranges (the caller runs range 0), so which thread computes what never depends on
 * timing; tasks write disjoint outputs, so results are bitwise reproducible. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CsPool CsPool;

/* Runs tasks [begin, end) on one thread. */
typedef void (*CsPoolFunc) (int begin, int end, int thread_index, void *ctx);

CsPool *cs_pool_new       (int n_threads);
void    cs_pool_free      (CsPool *pool);
int     cs_pool_n_threads (const CsPool *pool);
/* Blocks until all tasks ran. Not reentrant: one caller at a time. */
void    cs_pool_run       (CsPool *pool, int n_tasks, CsPoolFunc func, void *ctx);
/* A 64-byte aligned scratch buffer of at least bytes, kept between runs (no allocation in
 * the steady state): slot = thread_index inside a task, or n_threads for the caller. */
void   *cs_pool_scratch   (CsPool *pool, int slot, size_t bytes);

G_END_DECLS
