//! What `startifact-fs --help` (and its man page) shows after the options: an example of
//! every option, the `status` command, the environment, and the exit status.

pub const EXAMPLES: &str = "\
Examples:
  startifact-fs local:/srv/artifacts /mnt/artifacts     the embedded local store
  startifact-fs --regions us-east-1,eu-west-2 aws /mnt/artifacts
  startifact-fs -f --log-level debug aws /mnt/artifacts   in the foreground, verbose
  startifact-fs --read-only aws /mnt/artifacts           a deployment host: no changes
  startifact-fs --allow-other --stagers ci aws /mnt/artifacts
                      everyone reads; root, the owner and group ci stage, move latest
  startifact-fs --uid 1000 --gid 1000 aws /mnt/artifacts  shown as owned by 1000:1000
  startifact-fs --metadata-ttl 2 aws /mnt/artifacts      see others' stages sooner
  startifact-fs --parameter /team/startifact aws /mnt/artifacts
  startifact-fs --endpoints us-east-1=http://127.0.0.1:9000,eu-west-2=http://10.0.0.2:9000 \\
      --regions us-east-1,eu-west-2 aws /mnt/artifacts   S3-compatible stores
  startifact-fs --cache-dir /var/cache/startifact-fs --cache-size 50G aws /mnt/artifacts
  startifact-fs --cache-dir /var/cache/startifact-fs --no-passthrough aws /mnt/artifacts
                      cached reads through the daemon, not by the kernel from the cache
  startifact-fs --staging-dir /var/lib/startifact-fs/ci --staging-size 20G aws /mnt/artifacts
  startifact-fs --part-size 16M --stop-timeout 120 aws /mnt/artifacts
  startifact-fs --allow-delete aws /mnt/artifacts        rm -r MOUNT/P/V yanks V
  startifact-fs --log-file /var/log/startifact-fs.log aws /mnt/artifacts   (SIGHUP reopens it)
  startifact-fs --config /etc/startifact-fs/ci.toml /mnt/artifacts
  startifact-fs --ca-bundle /etc/ssl/private-ca.pem aws /mnt/artifacts
  startifact-fs --aws-profile artifacts --aws-credentials-file /etc/startifact-fs/credentials \\
      aws /mnt/artifacts
  mount -t fuse.startifact-fs aws /mnt/artifacts -o regions=us-east-1:eu-west-2,allow_other,ro
  fstab: aws /mnt/artifacts fuse.startifact-fs regions=us-east-1:eu-west-2,_netdev,nofail 0 0
  startifact-fs status /mnt/artifacts [--json]   what is staging, awaiting repair, regions
  umount /mnt/artifacts                          stops the daemon (stages in flight finish)

Settings, strongest first: flags, -o options, the environment (STARTIFACT_REGIONS,
STARTIFACT_PARAMETER, STARTIFACT_ENDPOINTS, STARTIFACT_LOCAL_STORE, AWS_CA_BUNDLE,
AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE...), the configuration file
(/etc/startifact-fs/config.toml, or --config), the defaults. RUST_LOG sets the log when
--log-level does not.

Exit status: 0 once the mount answers (or, in the foreground, once it is unmounted
cleanly); 1 with one line on stderr saying why it could not mount.";
