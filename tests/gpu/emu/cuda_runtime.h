/* A CPU emulation of the small part of the CUDA runtime the backend uses, so its kernels
 * (translated to C++ by cuda-to-cpp.py) can be checked against the C reference on a
 * machine without a GPU. NOT a CUDA implementation: enough for our kernels, strict about
 * what they must not do. The threads of a block run as coroutines, so __syncthreads and
 * warp shuffles have their real meaning; a barrier that some threads of the block (or a
 * shuffle that some lanes of the warp) never reach aborts with a message. Test-only. */
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(x)

struct dim3
{
  unsigned x, y, z;
  dim3 (unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x (x_), y (y_), z (z_) {}
};

extern dim3 threadIdx, blockIdx, blockDim, gridDim;

typedef enum
{
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInsufficientDriver = 35,
} cudaError_t;

typedef enum
{
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
} cudaMemcpyKind;

typedef void *cudaStream_t;

struct cudaDeviceProp
{
  char name[256];
  int major, minor, multiProcessorCount;
};

cudaError_t cudaMalloc (void *ptr, size_t bytes);
template <typename T>
static inline cudaError_t
cudaMalloc (T **ptr, size_t bytes)
{
  return cudaMalloc ((void *) ptr, bytes);
}
cudaError_t cudaFree (void *ptr);
cudaError_t cudaMemcpy (void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync (void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                             cudaStream_t stream);
cudaError_t cudaMemset (void *dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync (void *dst, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaDeviceSynchronize (void);
cudaError_t cudaGetLastError (void);
const char *cudaGetErrorString (cudaError_t err);
const char *cudaGetErrorName (cudaError_t err);
cudaError_t cudaMemGetInfo (size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaSetDevice (int device);
cudaError_t cudaGetDeviceCount (int *count);
cudaError_t cudaGetDeviceProperties (cudaDeviceProp *prop, int device);
cudaError_t cudaDriverGetVersion (int *version);
cudaError_t cudaRuntimeGetVersion (int *version);

/* kernel launch (cuda-to-cpp.py turns K<<<g, b>>> (args) into this); cooperative FALSE
 * runs the threads one after the other (kernels without barriers or shuffles) */
void cs_emu_launch (dim3 grid, dim3 block, bool cooperative, const char *name,
                    const std::function<void ()> &body);

void __syncthreads (void);
/* exchange of one 8-byte value within the warp (all 32 lanes must take part) */
uint64_t cs_emu_warp_exchange (uint64_t value, int src_lane);

template <typename T>
static inline T
__shfl_xor_sync (unsigned mask, T value, int lane_mask)
{
  uint64_t bits = 0, got;
  T out;
  unsigned lane = (threadIdx.x + threadIdx.y * blockDim.x) % 32;
  memcpy (&bits, &value, sizeof (T));
  got = cs_emu_warp_exchange (bits, (int) (lane ^ (unsigned) lane_mask));
  memcpy (&out, &got, sizeof (T));
  return out;
}

/* single-threaded between switches: plain read-modify-write is atomic here */
static inline int
atomicMin (int *p, int v)
{
  int old = *p;
  *p = v < old ? v : old;
  return old;
}

static inline int
atomicMax (int *p, int v)
{
  int old = *p;
  *p = v > old ? v : old;
  return old;
}

using std::max;
using std::min;
