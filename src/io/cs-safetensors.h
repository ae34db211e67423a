/* cs-safetensors.h: model weights and test fixtures in the safetensors format (F32 only),
 * readable by PyTorch users. Layout: 8-byte little-endian header length N, N bytes of
 * JSON ({"name": {"dtype", "shape", "data_offsets"}, ..., "__metadata__": {...}}, padded
 * with spaces to a multiple of 8), then the raw little-endian float32 data. */
#pragma once

#include <glib.h>

#include "cs-volume.h"   /* CS_IO_ERROR */

G_BEGIN_DECLS

#define CS_SAFETENSORS_MAX_DIMS 6
/* The metadata "version" our files carry, whatever their "format". */
#define CS_SAFETENSORS_VERSION "1"
/* The metadata "format" of model weight files (engine contract). */
#define CS_SAFETENSORS_FORMAT_MODEL "cordscope-u2ad"

/* A tensor's name and shape: what a writer writes, or what a reader expects. */
typedef struct
{
  const char *name;
  guint n_dims;
  gint64 shape[CS_SAFETENSORS_MAX_DIMS];
} CsTensorSpec;

gsize cs_tensor_spec_n_elements (const CsTensorSpec *spec);

/* Writes n_tensors tensors, in that order, whose data lie one after the other in
 * flat_data (as the engine's contiguous parameter buffer holds them). metadata is a
 * NULL-terminated list of key, value, key, value... (may be NULL). The file is written
 * atomically (temp file + fsync + rename); NaN or Inf values are refused, so a file we
 * write is always one we can read. */
gboolean cs_safetensors_write (const char *path, const CsTensorSpec *specs, guint n_tensors,
                               const float *flat_data, const char *const *metadata,
                               GError **error);

typedef struct _CsSafetensors CsSafetensors;

/* Reads and validates a whole file. With expected_format non-NULL the metadata must have
 * that "format" and version CS_SAFETENSORS_VERSION. With expected non-NULL the file must
 * hold exactly those tensors (any order) with exactly those shapes. Refuses truncated
 * files, header lengths beyond the file, bad JSON, non-F32 dtypes, offsets out of range,
 * overlapping or not matching the shape, and NaN/Inf values; the GError (CS_IO_ERROR)
 * names the file and the tensor. */
CsSafetensors *cs_safetensors_read (const char *path, const char *expected_format,
                                    const CsTensorSpec *expected, guint n_expected,
                                    GError **error);
void cs_safetensors_free (CsSafetensors *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsSafetensors, cs_safetensors_free)

const char *cs_safetensors_path (const CsSafetensors *file);
/* Tensors in file (data offset) order. */
guint cs_safetensors_n_tensors (const CsSafetensors *file);
const char *cs_safetensors_name (const CsSafetensors *file, guint index);
/* The tensor's data (owned by file) and, when spec_out is non-NULL, its shape; NULL when
 * the file has no tensor of that name. */
const float *cs_safetensors_lookup (const CsSafetensors *file, const char *name,
                                    CsTensorSpec *spec_out);
/* A "__metadata__" value, or NULL. */
const char *cs_safetensors_metadata (const CsSafetensors *file, const char *key);

/* Copies the tensors named in specs, in specs order, one after the other into flat_data
 * (the inverse of cs_safetensors_write). The file must have been read with the same
 * expected table, or the call fails naming the tensor that is missing or misshapen. */
gboolean cs_safetensors_copy_flat (const CsSafetensors *file, const CsTensorSpec *specs,
                                   guint n_tensors, float *flat_data, GError **error);

G_END_DECLS
