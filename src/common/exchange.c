#include "common/exchange.h"

#include "common/util.h"

#include <stdlib.h>

const char *scim_request_header(const struct scim_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (scim_streq_ci(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

int scim_response_header(struct scim_response *resp, const char *name, const char *value)
{
    char *v;
    if (resp->n_headers >= SCIM_MAX_RESP_HEADERS)
        return -1;
    v = scim_strdup(value);
    if (!v)
        return -1;
    resp->headers[resp->n_headers].name = name;
    resp->headers[resp->n_headers].value = v;
    resp->n_headers++;
    return 0;
}

void scim_response_release(struct scim_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    for (size_t i = 0; i < resp->n_headers; i++)
        free(resp->headers[i].value);
    resp->n_headers = 0;
}
