/* placeholder: filled in by its owner */
#include "cs-cli.h"

int
cs_cli_info (int argc, char **argv)
{
  return cs_cli_fail ("info", "not built yet");
}
