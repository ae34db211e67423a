/* cs-paths.h: where Cordscope's own data (bundled sample, bundled model) lives. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Finds RELPATH (e.g. "samples/phantom-000.nii.gz", "models/u2ad-small.safetensors")
 * in $CORDSCOPE_DATADIR, then the build tree's data/, then the source tree's data/,
 * then the installed data folder. Returns a newly allocated path, or NULL. */
char *cs_data_find (const char *relpath);

G_END_DECLS
