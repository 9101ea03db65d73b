/* cmd_explain: placeholder until the explain command lands. */
#include "cli/cli.h"
#include <stdio.h>
int cmd_explain(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "gad explain: not implemented yet\n");
    return 1;
}
