/* cs-window-export.c: the labels out of the window and back in (issue 7): the dataset CSV
 * and JSON of every case in the worklist, the SCT disc-label NIfTI of the case on screen,
 * and the dataset CSV imported into the cases it names (each an undoable change of the
 * case's document). The formats are src/io/cs-export.h's. */
#include "cs-config.h"

#include <math.h>
#include <glib/gi18n.h>

#include "io/cs-export.h"
#include "cs-window-private.h"

/* Every case of the worklist (or the case on screen alone) with the model's scores. */
static GPtrArray *
collect_cases (CsWindow  *self,
               GError   **error)
{
  g_autoptr(GPtrArray) cases = NULL;
  if (self->cases != NULL)
    cases = g_ptr_array_ref (self->cases);
  if (cases == NULL || cases->len == 0)
    {
      g_set_error_literal (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, _("No case is open"));
      return NULL;
    }
  /* What is on screen goes to disk first: the export reads the sidecars. */
  if (self->annotation != NULL && !cs_annotation_flush (self->annotation, error))
    return NULL;
  GPtrArray *out = cs_export_collect (cases, error);
  for (guint i = 0; out != NULL && i < out->len && i < cases->len; i++)
    {
      CsExportCase *e = g_ptr_array_index (out, i);
      const CsCase *c = g_ptr_array_index (cases, i);
      const CsCaseResult *result = g_hash_table_lookup (self->results, c->image_path);
      const CsDetection *det = result != NULL ? result->detection : NULL;
      for (int s = 0; det != NULL && det->have_segments && s < CS_N_SEGMENTS; s++)
        e->model_score[s] = det->segments[s].present ? det->segments[s].score : NAN;
    }
  return out;
}

gboolean
cs_window_export_dataset (CsWindow    *self,
                          const char  *path,
                          gboolean     json,
                          GError     **error)
{
  g_autoptr(GPtrArray) cases = collect_cases (self, error);
  if (cases == NULL)
    return FALSE;
  return json ? cs_export_json (cases, path, error) : cs_export_csv (cases, path, error);
}

char *
cs_window_export_discs (CsWindow    *self,
                        const char  *folder,
                        GError     **error)
{
  if (self->annotation == NULL || self->loaded == NULL)
    {
      g_set_error_literal (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, _("No case is open"));
      return NULL;
    }
  g_autoptr(GArray) discs = cs_annotation_dup_discs (self->annotation);
  g_autofree char *path = cs_export_disc_labels_path (folder, self->loaded->name);
  if (!cs_export_disc_labels (self->loaded->volume, discs, path, error))
    return NULL;
  return g_steal_pointer (&path);
}

int
cs_window_import_labels (CsWindow    *self,
                         const char  *path,
                         GError     **error)
{
  g_autoptr(GPtrArray) rows = cs_import_csv (path, error);
  int n_changed = 0;
  if (rows == NULL)
    return -1;
  for (guint r = 0; r < rows->len; r++)
    {
      const CsExportCase *row = g_ptr_array_index (rows, r);
      for (guint i = 0; self->cases != NULL && i < self->cases->len; i++)
        {
          const CsCase *c = g_ptr_array_index (self->cases, i);
          if (g_strcmp0 (c->name, row->sidecar->case_name) != 0)
            continue;
          gboolean on_screen = self->annotation != NULL && self->loaded != NULL
                               && self->loaded->index == i;
          if (on_screen)
            {
              /* One undoable step, saved like any other change. */
              n_changed += cs_annotation_import_labels (self->annotation, row->sidecar);
              break;
            }
          g_autoptr(CsAnnotation) doc = cs_annotation_open_case (c, error);
          if (doc == NULL)
            return -1;
          if (cs_annotation_import_labels (doc, row->sidecar))
            n_changed++;
          if (!cs_annotation_flush (doc, error))
            return -1;
          break;
        }
    }
  cs_window_worklist_reload (self);
  return n_changed;
}

/* ---- the menu's actions: a file chooser, then the above ---------------------------- */

typedef enum
{
  EXPORT_CSV,
  EXPORT_JSON,
  EXPORT_DISCS,
  IMPORT_CSV,
} ExportKind;

static void
show_outcome (CsWindow   *self,
              const char *heading,
              const char *body)
{
  GtkWidget *dialog = adw_message_dialog_new (GTK_WINDOW (self), heading, body);
  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_chooser_response (GtkNativeDialog *dialog,
                     int              response,
                     gpointer         user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  ExportKind kind = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (dialog), "cs-kind"));
  g_autoptr(GFile) file = response == GTK_RESPONSE_ACCEPT
                            ? gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog)) : NULL;
  g_autofree char *path = file != NULL ? g_file_get_path (file) : NULL;
  g_autoptr(GError) error = NULL;

  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
  if (path == NULL)
    return;
  if (kind == EXPORT_CSV || kind == EXPORT_JSON)
    {
      if (!cs_window_export_dataset (self, path, kind == EXPORT_JSON, &error))
        show_outcome (self, _("Export failed"), error->message);
    }
  else if (kind == EXPORT_DISCS)
    {
      g_autofree char *written = cs_window_export_discs (self, path, &error);
      if (written == NULL)
        show_outcome (self, _("Export failed"), error->message);
    }
  else
    {
      int n = cs_window_import_labels (self, path, &error);
      if (n < 0)
        show_outcome (self, _("Import failed"), error->message);
      else
        {
          g_autofree char *body = g_strdup_printf (_("Labels of %d cases changed."), n);
          show_outcome (self, _("Labels imported"), body);
        }
    }
}

static void
choose (CsWindow   *self,
        ExportKind  kind)
{
  static const char *const titles[] = {
    N_("Export the Labels as CSV"), N_("Export the Labels as JSON"),
    N_("Export the Disc Labels (SCT) to a Folder"), N_("Import Labels from CSV"),
  };
  GtkFileChooserAction action = kind == IMPORT_CSV ? GTK_FILE_CHOOSER_ACTION_OPEN
                                : kind == EXPORT_DISCS ? GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER
                                : GTK_FILE_CHOOSER_ACTION_SAVE;
  GtkFileChooserNative *chooser =
    gtk_file_chooser_native_new (_(titles[kind]), GTK_WINDOW (self), action,
                                 kind == IMPORT_CSV ? _("_Import") : _("_Export"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  if (kind == EXPORT_CSV || kind == EXPORT_JSON)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (chooser),
                                       kind == EXPORT_CSV ? "labels.csv" : "labels.json");
  g_object_set_data (G_OBJECT (chooser), "cs-kind", GINT_TO_POINTER (kind));
  g_signal_connect_object (chooser, "response", G_CALLBACK (on_chooser_response), self, 0);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
export_csv_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose (CS_WINDOW (user_data), EXPORT_CSV);
}

static void
export_json_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose (CS_WINDOW (user_data), EXPORT_JSON);
}

static void
export_discs_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose (CS_WINDOW (user_data), EXPORT_DISCS);
}

static void
import_csv_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  choose (CS_WINDOW (user_data), IMPORT_CSV);
}

static const GActionEntry export_actions[] = {
  { .name = "export-csv", .activate = export_csv_action },
  { .name = "export-json", .activate = export_json_action },
  { .name = "export-discs", .activate = export_discs_action },
  { .name = "import-csv", .activate = import_csv_action },
};

void
cs_window_export_add_actions (CsWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), export_actions,
                                   G_N_ELEMENTS (export_actions), self);
}
