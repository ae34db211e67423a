#include "cs-test-util.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

char *
cs_test_make_tmp (const char *template_name)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp (template_name, &error);
  g_assert_no_error (error);
  return dir;
}

void
cs_test_remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
      const char *name;
      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          cs_test_remove_tree (child);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

gboolean
cs_test_make_read_only (const char *dir, gboolean on, const char **how)
{
  if (geteuid () != 0)
    {
      if (how)
        *how = "chmod 0555";
      return g_chmod (dir, on ? 0555 : 0755) == 0;
    }
  if (how)
    *how = "immutable flag (chattr +i)";
  int fd = open (dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return FALSE;
  int flags = 0;
  gboolean ok = ioctl (fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok)
    {
      flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
      ok = ioctl (fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
  close (fd);
  return ok;
}
