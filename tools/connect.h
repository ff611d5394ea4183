/* mtls-check --connect (tools/connect.c). */
#ifndef MTLS_CHECK_CONNECT_H
#define MTLS_CHECK_CONNECT_H
/* Runs the --connect mode on the whole command line; its exit status. */
int mtls_check_connect_main(int argc, char **argv);
#endif
