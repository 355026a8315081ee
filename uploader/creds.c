/*
 * creds.c - AWS credentials from the environment. The struct is the only
 * copy the uploader keeps; creds_wipe() clears it. Values are never logged.
 */
#include "uploader/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

static int
creds_copy(const char *var, char *dst, size_t len, int required)
{
	const char *v = getenv(var);

	if (v == NULL || *v == '\0') {
		if (required)
			log_warnx("%s is not set; export the uploader's "
			    "S3 credentials in its environment", var);
		dst[0] = '\0';
		return required ? -1 : 0;
	}
	if (xstrlcpy(dst, v, len) >= len) {
		log_warnx("%s is longer than %zu bytes", var, len - 1);
		return -1;
	}
	return 0;
}

int
creds_from_env(struct aws_creds *c)
{
	memset(c, 0, sizeof(*c));
	if (creds_copy("AWS_ACCESS_KEY_ID", c->access_key,
	    sizeof(c->access_key), 1) != 0 ||
	    creds_copy("AWS_SECRET_ACCESS_KEY", c->secret_key,
	    sizeof(c->secret_key), 1) != 0 ||
	    creds_copy("AWS_SESSION_TOKEN", c->session_token,
	    sizeof(c->session_token), 0) != 0)
		goto fail;
	return 0;
fail:
	creds_wipe(c);
	return -1;
}

void
creds_wipe(struct aws_creds *c)
{
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
}
