/* cmd_train: placeholder until the train command lands. */
#include "cli/cli.h"
#include <stdio.h>
int cmd_train(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "gad train: not implemented yet\n");
    return 1;
}
