/* blob: the store implementation for Azure Blob Storage containers (REST API).
 *
 * Requests are signed by an auth_cred and run on an http_client's worker pool, with
 * its retries. Paths are mapped to blob names under the URL's prefix; directories are
 * '/' prefixes or 0-byte marker blobs with metadata hdi_isfolder=true.
 */
#ifndef FERRY_BLOB_H
#define FERRY_BLOB_H

#include "auth/auth.h"
#include "cache/store/http.h"
#include "cache/store/store.h"
#include "cache/store/url.h"

struct blob_config {
	const struct url_container *url;
	const struct auth_cred *cred; /* borrowed: must outlive the store */
	struct http_client *http;     /* borrowed: must outlive the store */
};

/* Builds a blob store. Makes no request (store_probe() does). */
int blob_store_new(const struct blob_config *cfg, struct store **out);

#endif
