#include "cs-config.h"
#include "cs-paths.h"

char *
cs_data_find (const char *relpath)
{
  const char *env = g_getenv ("CORDSCOPE_DATADIR");
  const char *roots[] = {
    env,
    CS_BUILD_ROOT "/data",
    CS_SOURCE_ROOT "/data",
    CS_PKGDATADIR,
  };

  for (guint i = 0; i < G_N_ELEMENTS (roots); i++)
    {
      if (roots[i] == NULL || roots[i][0] == '\0')
        continue;
      char *path = g_build_filename (roots[i], relpath, NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return path;
      g_free (path);
    }
  return NULL;
}
