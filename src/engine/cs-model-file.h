/* cs-model-file.h: a model's weights as a safetensors file (format cordscope-u2ad, the
 * configuration in the metadata, PyTorch state_dict names): what pretrain, adapt, detect
 * and the app read and write. The engine's one use of a file format, through src/io. */
#pragma once

#include "engine/cs-model.h"

G_BEGIN_DECLS

/* A model built from the file's configuration with the file's weights on BACKEND.
 * Refuses, naming the file: not safetensors, another format or version, no or a bad
 * configuration, missing / extra / misshapen tensors, NaN or Inf. */
CsModel  *cs_model_load (const char *path, CsBackend *backend, GError **error);

/* Writes PARAMS (a flat buffer in the model's table order; NULL: the model's own weights)
 * atomically, with the configuration and EXTRA metadata (a NULL-terminated key, value
 * list; may be NULL) in __metadata__. */
gboolean  cs_model_save (CsModel *model, const float *params, const char *path,
                         const char *const *extra, GError **error);

G_END_DECLS
