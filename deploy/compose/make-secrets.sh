#!/usr/bin/env bash
# Creates what the compose example needs beside docker-compose.yml, keeping anything that exists:
#   secrets/pg_password, secrets/api_token   random, 0640, group 10001 (the image's group), so the containers'
#                                            user can read them and nobody else on this host can
#   secrets/tls/tls.crt, tls.key             a self-signed certificate for the proxy (replace with your own)
#   app.env                                  the application's .env, from app.env.example (0660, group 10001:
#                                            restore writes it back)
# Run it as root (or with sudo): only root can give files to group 10001.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
    echo "make-secrets.sh: run as root (sudo ./make-secrets.sh): the files are given to group 10001" >&2
    exit 2
fi
umask 077
mkdir -p secrets/tls
chmod 0750 secrets secrets/tls
chgrp 10001 secrets secrets/tls
random() { openssl rand -base64 36 | tr -d '/+=\n' | cut -c1-40; }
for name in pg_password api_token; do
    if [ ! -s "secrets/$name" ]; then
        random > "secrets/$name"
        echo "created secrets/$name"
    fi
    chgrp 10001 "secrets/$name"
    chmod 0640 "secrets/$name"
done
if [ ! -s secrets/tls/tls.crt ]; then
    host="${1:-localhost}"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=$host" \
        -addext "subjectAltName=DNS:$host" -keyout secrets/tls/tls.key -out secrets/tls/tls.crt 2>/dev/null
    echo "created a self-signed certificate for $host in secrets/tls (replace it with your own)"
fi
chmod 0644 secrets/tls/tls.crt
chmod 0600 secrets/tls/tls.key
if [ ! -e app.env ]; then
    cp app.env.example app.env
    echo "created app.env from app.env.example"
fi
chgrp 10001 app.env
chmod 0660 app.env
