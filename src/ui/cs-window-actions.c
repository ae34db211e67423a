/* cs-window-actions.c: the window's actions (win.*), shared by keys, menus and tests. */
#include "cs-config.h"

#include <string.h>
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

static void
detect_action (GSimpleAction *action,
               GVariant      *parameter,
               gpointer       user_data)
{
  cs_window_detect (CS_WINDOW (user_data));
}

static void
cancel_detection_action (GSimpleAction *action,
                         GVariant      *parameter,
                         gpointer       user_data)
{
  cs_window_cancel_detection (CS_WINDOW (user_data));
}

static void
next_case_action (GSimpleAction *action,
                  GVariant      *parameter,
                  gpointer       user_data)
{
  cs_window_step_case (CS_WINDOW (user_data), 1);
}

static void
previous_case_action (GSimpleAction *action,
                      GVariant      *parameter,
                      gpointer       user_data)
{
  cs_window_step_case (CS_WINDOW (user_data), -1);
}

static void
next_slice_action (GSimpleAction *action,
                   GVariant      *parameter,
                   gpointer       user_data)
{
  cs_window_step_slice (CS_WINDOW (user_data), 1);
}

static void
previous_slice_action (GSimpleAction *action,
                       GVariant      *parameter,
                       gpointer       user_data)
{
  cs_window_step_slice (CS_WINDOW (user_data), -1);
}

/* Space: the anomaly map on or off, the overlay a reader checks against the image. */
static void
toggle_overlay_action (GSimpleAction *action,
                       GVariant      *parameter,
                       gpointer       user_data)
{
  CsSliceView *view = CS_WINDOW (user_data)->slice_view;
  cs_slice_view_set_overlay_visible (view, CS_OVERLAY_ANOMALY,
                                     !cs_slice_view_get_overlay_visible (view, CS_OVERLAY_ANOMALY));
}

static void
overlay_change_state (GSimpleAction *action,
                      GVariant      *state,
                      gpointer       user_data)
{
  CsOverlay overlay;
  const char *name = g_action_get_name (G_ACTION (action));

  if (cs_overlay_from_id (name + strlen ("overlay-"), &overlay))
    cs_slice_view_set_overlay_visible (CS_WINDOW (user_data)->slice_view, overlay,
                                       g_variant_get_boolean (state));
  g_simple_action_set_state (action, state);
}

static void
zoom_by (CsWindow *self,
         double    factor)
{
  GtkWidget *view = GTK_WIDGET (self->slice_view);
  cs_slice_view_zoom_at (self->slice_view, factor, gtk_widget_get_width (view) / 2.0,
                         gtk_widget_get_height (view) / 2.0);
}

static void
zoom_in_action (GSimpleAction *action,
                GVariant      *parameter,
                gpointer       user_data)
{
  zoom_by (CS_WINDOW (user_data), 1.25);
}

static void
zoom_out_action (GSimpleAction *action,
                 GVariant      *parameter,
                 gpointer       user_data)
{
  zoom_by (CS_WINDOW (user_data), 0.8);
}

static void
zoom_fit_action (GSimpleAction *action,
                 GVariant      *parameter,
                 gpointer       user_data)
{
  cs_slice_view_zoom_fit (CS_WINDOW (user_data)->slice_view);
}

static void
auto_window_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  cs_slice_view_reset_window (CS_WINDOW (user_data)->slice_view);
}

static const GActionEntry cs_window_actions[] = {
  { .name = "open-file", .activate = open_file_action },
  { .name = "open-folder", .activate = open_folder_action },
  { .name = "open-sample", .activate = open_sample_action },
  { .name = "detect", .activate = detect_action },
  { .name = "cancel-detection", .activate = cancel_detection_action },
  { .name = "next-case", .activate = next_case_action },
  { .name = "previous-case", .activate = previous_case_action },
  { .name = "next-slice", .activate = next_slice_action },
  { .name = "previous-slice", .activate = previous_slice_action },
  { .name = "toggle-overlay", .activate = toggle_overlay_action },
  { .name = "zoom-in", .activate = zoom_in_action },
  { .name = "zoom-out", .activate = zoom_out_action },
  { .name = "zoom-fit", .activate = zoom_fit_action },
  { .name = "auto-window", .activate = auto_window_action },
  { .name = "overlay-anomaly", .state = "true", .change_state = overlay_change_state },
  { .name = "overlay-eu", .state = "false", .change_state = overlay_change_state },
  { .name = "overlay-au", .state = "false", .change_state = overlay_change_state },
  { .name = "overlay-mean", .state = "false", .change_state = overlay_change_state },
  { .name = "overlay-cord", .state = "true", .change_state = overlay_change_state },
  { .name = "overlay-discs", .state = "true", .change_state = overlay_change_state },
  { .name = "overlay-lesion", .state = "true", .change_state = overlay_change_state },
};

/* Accelerators are the application's (cs-application.c), so one table lists them all. */
void
cs_window_add_actions (CsWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), cs_window_actions,
                                   G_N_ELEMENTS (cs_window_actions), self);
}
