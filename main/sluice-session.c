/*
 * sluice-session - one SFTP session, exec'd by the supervisor (`sluice
 * serve`) for each connection as `sluice-session __session [-v]`, already
 * running as the session user (server/server.h: session_main). Its own
 * program so that it links only what a session uses (libssh, libcrypto,
 * jansson, libseccomp): each idle session then relocates and keeps
 * private far fewer libraries' data than a re-exec of sluice would.
 */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "__session") != 0 || argc > 3) {
		fprintf(stderr, "sluice-session: started by `sluice serve` for "
		    "each connection, not by hand\n");
		return 2;
	}
	session_main(argc > 2 && strcmp(argv[2], "-v") == 0);
}
