/* emu-runtime.cpp: the CPU emulation behind cuda_runtime.h and cublas_v2.h (test-only).
 * Blocks run one after the other; in a cooperative launch the threads of a block are
 * ucontext coroutines that switch at __syncthreads and at warp shuffles. */
#include "cublas_v2.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include <vector>

dim3 threadIdx, blockIdx, blockDim, gridDim;

static cudaError_t last_error = cudaSuccess;

/* ---------------------------------------------------------------- memory */

cudaError_t
cudaMalloc (void *ptr, size_t bytes)
{
  void **out = (void **) ptr;
  /* the "device" is this process: refuse absurd sizes like a GPU would */
  if (bytes > ((size_t) 64 << 30))
    {
      *out = NULL;
      return last_error = cudaErrorMemoryAllocation;
    }
  *out = aligned_alloc (256, (bytes + 255) & ~(size_t) 255);
  if (*out == NULL)
    return last_error = cudaErrorMemoryAllocation;
  memset (*out, 0xff, bytes); /* NaN garbage: code that relies on zeroed memory shows */
  return cudaSuccess;
}

cudaError_t
cudaFree (void *ptr)
{
  free (ptr);
  return cudaSuccess;
}

cudaError_t
cudaMemcpy (void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
  memmove (dst, src, bytes);
  return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync (void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s)
{
  memmove (dst, src, bytes);
  return cudaSuccess;
}

cudaError_t
cudaMemset (void *dst, int value, size_t bytes)
{
  memset (dst, value, bytes);
  return cudaSuccess;
}

cudaError_t
cudaMemsetAsync (void *dst, int value, size_t bytes, cudaStream_t s)
{
  memset (dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize (void) { return cudaSuccess; }

cudaError_t
cudaGetLastError (void)
{
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

const char *
cudaGetErrorString (cudaError_t err)
{
  switch (err)
    {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    default: return "emulated error";
    }
}

const char *
cudaGetErrorName (cudaError_t err)
{
  switch (err)
    {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    default: return "cudaErrorEmulated";
    }
}

cudaError_t
cudaMemGetInfo (size_t *free_bytes, size_t *total_bytes)
{
  *free_bytes = (size_t) 64 << 30;
  *total_bytes = (size_t) 64 << 30;
  return cudaSuccess;
}

cudaError_t cudaSetDevice (int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }

cudaError_t
cudaGetDeviceCount (int *count)
{
  *count = 1;
  return cudaSuccess;
}

cudaError_t
cudaGetDeviceProperties (cudaDeviceProp *prop, int device)
{
  memset (prop, 0, sizeof *prop);
  strcpy (prop->name, "CPU emulation (test only)");
  prop->major = 9;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion (int *v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion (int *v) { *v = 13000; return cudaSuccess; }

/* ---------------------------------------------------------------- launches */

enum { RUN, AT_BLOCK, AT_WARP, DONE };

struct EmuThread
{
  ucontext_t ctx;
  int state;
  dim3 idx;
  uint64_t slot; /* value offered to a warp exchange */
  int warp_round;
};

static struct
{
  bool cooperative;
  const char *name;
  const std::function<void ()> *body;
  std::vector<EmuThread> threads;
  std::vector<std::vector<char>> stacks;
  ucontext_t scheduler;
  int current;
} emu;

static void
emu_die (const char *what)
{
  fprintf (stderr, "CUDA emulation: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s\n",
           emu.name, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z,
           what);
  abort ();
}

static void
thread_entry (void)
{
  (*emu.body) ();
  emu.threads[emu.current].state = DONE;
  /* uc_link returns to the scheduler */
}

static void
yield_to_scheduler (int state)
{
  EmuThread *t = &emu.threads[emu.current];
  t->state = state;
  swapcontext (&t->ctx, &emu.scheduler);
}

void
__syncthreads (void)
{
  if (!emu.cooperative)
    emu_die ("__syncthreads in a kernel launched as non-cooperative (add it to cuda-to-cpp.py)");
  yield_to_scheduler (AT_BLOCK);
}

uint64_t
cs_emu_warp_exchange (uint64_t value, int src_lane)
{
  int me = emu.current, warp0 = me / 32 * 32;
  uint64_t got;

  if (!emu.cooperative)
    emu_die ("warp shuffle in a kernel launched as non-cooperative (add it to cuda-to-cpp.py)");
  if (src_lane < 0 || src_lane > 31 || warp0 + 32 > (int) emu.threads.size ())
    emu_die ("warp shuffle outside a full warp");
  emu.threads[me].slot = value;
  yield_to_scheduler (AT_WARP); /* everyone has offered */
  got = emu.threads[warp0 + src_lane].slot;
  yield_to_scheduler (AT_WARP); /* everyone has read: slots may be reused */
  return got;
}

static void
run_block_cooperative (int n)
{
  size_t stack_bytes = 256 * 1024;

  emu.threads.assign (n, EmuThread ());
  if ((int) emu.stacks.size () < n)
    emu.stacks.resize (n);
  for (int i = 0; i < n; i++)
    {
      EmuThread *t = &emu.threads[i];
      emu.stacks[i].resize (stack_bytes);
      t->idx = dim3 (i % blockDim.x, i / blockDim.x % blockDim.y, i / (blockDim.x * blockDim.y));
      t->state = RUN;
      getcontext (&t->ctx);
      t->ctx.uc_stack.ss_sp = emu.stacks[i].data ();
      t->ctx.uc_stack.ss_size = stack_bytes;
      t->ctx.uc_link = &emu.scheduler;
      makecontext (&t->ctx, thread_entry, 0);
    }
  for (;;)
    {
      int alive = 0, at_block = 0, done = 0;
      for (int i = 0; i < n; i++)
        if (emu.threads[i].state == RUN)
          {
            emu.current = i;
            threadIdx = emu.threads[i].idx;
            swapcontext (&emu.scheduler, &emu.threads[i].ctx);
          }
      /* every thread now waits somewhere or is done */
      for (int i = 0; i < n; i++)
        {
          alive += emu.threads[i].state != DONE;
          at_block += emu.threads[i].state == AT_BLOCK;
          done += emu.threads[i].state == DONE;
        }
      if (alive == 0)
        return;
      bool released = false;
      for (int w = 0; w < n; w += 32)
        {
          int at_warp = 0, lanes = std::min (32, n - w);
          for (int i = w; i < w + lanes; i++)
            at_warp += emu.threads[i].state == AT_WARP;
          if (at_warp == 0)
            continue;
          if (at_warp != 32)
            {
              threadIdx = emu.threads[w].idx;
              emu_die ("a warp shuffle that not all 32 lanes of the warp reach");
            }
          for (int i = w; i < w + lanes; i++)
            emu.threads[i].state = RUN;
          released = true;
        }
      if (released)
        continue;
      if (at_block == alive)
        {
          if (done > 0)
            emu_die ("__syncthreads after some threads of the block returned");
          for (int i = 0; i < n; i++)
            emu.threads[i].state = RUN;
          continue;
        }
      emu_die ("deadlock: threads wait at different barriers");
    }
}

void
cs_emu_launch (dim3 grid, dim3 block, bool cooperative, const char *name,
               const std::function<void ()> &body)
{
  int n = (int) (block.x * block.y * block.z);

  if (n < 1 || n > 1024 || grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535
      || grid.z > 65535)
    {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
  gridDim = grid;
  blockDim = block;
  emu.cooperative = cooperative;
  emu.name = name;
  emu.body = &body;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++)
        {
          blockIdx = dim3 (x, y, z);
          if (cooperative)
            {
              run_block_cooperative (n);
              continue;
            }
          for (int i = 0; i < n; i++)
            {
              threadIdx = dim3 (i % block.x, i / block.x % block.y, i / (block.x * block.y));
              body ();
            }
        }
}

/* ---------------------------------------------------------------- cuBLAS */

struct CsEmuBlas
{
  int unused;
};

cublasStatus_t
cublasCreate (cublasHandle_t *handle)
{
  *handle = new CsEmuBlas ();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasDestroy (cublasHandle_t handle)
{
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream (cublasHandle_t h, cudaStream_t s) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t
cublasSetMathMode (cublasHandle_t h, cublasMath_t m)
{
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasGemmEx (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
              int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda,
              const void *B, cudaDataType Btype, int ldb, const void *beta, void *C,
              cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
              cublasGemmAlgo_t algo)
{
  /* cuBLAS's own argument checks (column-major) */
  if (m < 0 || n < 0 || k < 0 || lda < std::max (1, transa == CUBLAS_OP_N ? m : k)
      || ldb < std::max (1, transb == CUBLAS_OP_N ? k : n) || ldc < std::max (1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  cblas_sgemm (CblasColMajor, transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
               transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k,
               *(const float *) alpha, (const float *) A, lda, (const float *) B, ldb,
               *(const float *) beta, (float *) C, ldc);
  return CUBLAS_STATUS_SUCCESS;
}
