#!/bin/sh
echo "hello from the ephemeral-cache example"
