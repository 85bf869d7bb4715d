#!/bin/sh
# The image's start: both templates filled from the environment, then nginx in the foreground.
# Only ${NAME}s of variables that are set are filled (as the nginx image does): nginx's own
# variables ($uri, $service…) are lower case and never set, so they stay.
set -eu
names=$(env | sed -n 's/^\([A-Z][A-Z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
for conf in nginx routes; do
    envsubst "$names" < "/etc/edge/$conf.conf.template" > "$EDGE_HOME/$conf.conf"
done
exec nginx -p "$EDGE_HOME" -c "$EDGE_HOME/nginx.conf" -g 'daemon off;'
