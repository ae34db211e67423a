/* cs-window-actions.c: the window's actions (win.*), shared by keys, menus and tests. */
#include "cs-config.h"

#include <glib/gi18n.h>

#include "cs-window-private.h"

static void
cs_window_chooser_response (GtkNativeDialog *dialog,
                            int              response,
                            gpointer         user_data)
{
  CsWindow *self = CS_WINDOW (user_data);

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      if (file != NULL)
        {
          cs_window_remember_folder (self, file);
          cs_window_open (self, file);
        }
    }

  gtk_native_dialog_destroy (dialog);
  if (self->file_chooser == GTK_FILE_CHOOSER_NATIVE (dialog))
    g_clear_object (&self->file_chooser);
}

/* GTK 4.8 has no GtkFileDialog (4.10): one native chooser, for a file or a folder. */
static void
cs_window_choose (CsWindow             *self,
                  GtkFileChooserAction  action)
{
  gboolean folder = action == GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER;

  if (self->file_chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->file_chooser));
  g_clear_object (&self->file_chooser);

  self->file_chooser =
    gtk_file_chooser_native_new (folder ? _("Open a Folder of Cases") : _("Open a NIfTI File"),
                                 GTK_WINDOW (self), action, _("_Open"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->file_chooser), TRUE);

  if (!folder)
    {
      g_autoptr(GtkFileFilter) nifti = gtk_file_filter_new ();
      gtk_file_filter_set_name (nifti, _("NIfTI images"));
      gtk_file_filter_add_suffix (nifti, "nii");
      gtk_file_filter_add_suffix (nifti, "nii.gz");
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->file_chooser), nifti);

      g_autoptr(GtkFileFilter) all = gtk_file_filter_new ();
      gtk_file_filter_set_name (all, _("All files"));
      gtk_file_filter_add_pattern (all, "*");
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->file_chooser), all);
    }

  g_autofree char *last = self->settings != NULL
                            ? g_settings_get_string (self->settings, "last-folder") : NULL;
  if (last != NULL && last[0] != '\0' && g_file_test (last, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GFile) start = g_file_new_for_path (last);
      gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (self->file_chooser), start, NULL);
    }

  g_signal_connect_object (self->file_chooser, "response",
                           G_CALLBACK (cs_window_chooser_response), self, 0);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->file_chooser));
}

static void
open_file_action (GSimpleAction *action,
                  GVariant      *parameter,
                  gpointer       user_data)
{
  cs_window_choose (CS_WINDOW (user_data), GTK_FILE_CHOOSER_ACTION_OPEN);
}

static void
open_folder_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  cs_window_choose (CS_WINDOW (user_data), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
}

static void
open_sample_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  cs_window_open_sample (CS_WINDOW (user_data));
}

static const GActionEntry cs_window_actions[] = {
  { .name = "open-file", .activate = open_file_action },
  { .name = "open-folder", .activate = open_folder_action },
  { .name = "open-sample", .activate = open_sample_action },
};

/* Accelerators are the application's (cs-application.c), so one table lists them all. */
void
cs_window_add_actions (CsWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), cs_window_actions,
                                   G_N_ELEMENTS (cs_window_actions), self);
}
