#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/kdf.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/bio.h>

/// BIO_get_mem_data is a macro: a typed function for Swift.
static inline long contingency_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
