/* cs-test-util.h: file-system helpers the display-less tests share. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A new empty folder in the temp dir, named from TEMPLATE ("cs-NAME-XXXXXX"). */
char     *cs_test_make_tmp       (const char *template_name);
/* Removes PATH and everything below it (symlinks are removed, not followed). */
void      cs_test_remove_tree    (const char *path);
/* Makes DIR refuse new entries (ON) or accept them again. Root ignores mode bits, so as
 * root the folder gets the immutable flag (as chattr +i); otherwise mode 0555. *HOW (may
 * be NULL) says which. FALSE when neither works here. */
gboolean  cs_test_make_read_only (const char *dir, gboolean on, const char **how);

G_END_DECLS
