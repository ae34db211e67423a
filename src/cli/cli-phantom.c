/* placeholder: filled in by its owner */
#include "cs-cli.h"

int
cs_cli_phantom (int argc, char **argv)
{
  return cs_cli_fail ("phantom", "not built yet");
}
