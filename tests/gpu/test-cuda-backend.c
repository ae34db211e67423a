/* test-cuda-backend: the CUDA backend in the normal test suite (CI has no GPU).
 *
 * Checks that the cordscope side never links the CUDA runtime or cuBLAS (they are not in
 * this process before the backend is asked for), that the module was compiled into the
 * build tree, and that without a usable GPU cs_backend_open ("cuda") fails cleanly with a
 * reason while "auto" falls back to the CPU and says why. With a GPU it exits 77 (skip):
 * tests/gpu/run.sh covers that case (op and model parity, benchmarks). */
#include "cs-config.h"
#include "engine/cs-backend.h"

#include <stdio.h>
#include <string.h>

/* TRUE when a library whose file name contains name is mapped into this process */
static gboolean
library_mapped (const char *name)
{
  g_autofree char *maps = NULL;

  if (!g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL))
    return FALSE;
  return strstr (maps, name) != NULL;
}

int
main (int argc, char **argv)
{
  g_autofree char *module = g_build_filename (CS_BUILD_ROOT, "src", "engine", "cuda",
                                              "libcs-backend-cuda.so", NULL);
  g_autofree char *reason = NULL, *auto_reason = NULL;
  CsBackend *be;

  /* the engine is linked in, the CUDA libraries must not be */
  if (library_mapped ("libcudart") || library_mapped ("libcublas"))
    {
      fprintf (stderr, "FAIL: the CUDA runtime or cuBLAS is loaded before any backend\n");
      return 1;
    }
  if (CS_HAVE_CUDA && !g_file_test (module, G_FILE_TEST_IS_REGULAR))
    {
      fprintf (stderr, "FAIL: this build has CUDA but no module at %s\n", module);
      return 1;
    }

  be = cs_backend_open ("cuda", 1, &reason);
  if (be != NULL)
    {
      printf ("SKIP: a usable GPU is present (%s); tests/gpu/run.sh covers it\n",
              cs_backend_name (be));
      cs_backend_close (be);
      return 77;
    }
  if (reason == NULL || !g_str_has_prefix (reason, "CUDA backend unavailable: ")
      || strlen (reason) < strlen ("CUDA backend unavailable: ") + 10)
    {
      fprintf (stderr, "FAIL: no reason, or an empty one: %s\n", reason ? reason : "(null)");
      return 1;
    }
  printf ("cuda refused cleanly: %s\n", reason);
  if (!CS_HAVE_CUDA && strstr (reason, "no CUDA backend module") == NULL)
    {
      fprintf (stderr, "FAIL: a build without CUDA should say the module is missing\n");
      return 1;
    }

  be = cs_backend_open ("auto", 1, &auto_reason);
  if (be == NULL || strcmp (cs_backend_name (be), "cpu") != 0 || auto_reason == NULL
      || !g_str_has_prefix (auto_reason, "using the CPU: "))
    {
      fprintf (stderr, "FAIL: auto did not fall back to the CPU with a reason (%s)\n",
               auto_reason ? auto_reason : "(null)");
      return 1;
    }
  printf ("auto: %s\n", auto_reason);
  if (cs_backend_take_error (be) != NULL)
    {
      fprintf (stderr, "FAIL: the CPU backend reports an error\n");
      return 1;
    }
  cs_backend_close (be);
  /* a failed open must leave nothing half-loaded that breaks a second try */
  g_clear_pointer (&reason, g_free);
  if (cs_backend_open ("cuda", 1, &reason) != NULL || reason == NULL)
    {
      fprintf (stderr, "FAIL: a second cuda open behaved differently\n");
      return 1;
    }
  printf ("ok\n");
  return 0;
}
