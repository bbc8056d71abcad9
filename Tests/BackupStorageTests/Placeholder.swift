// The storage layer's own tests (SigV4 signing, S3 request building) live in this target.
