/**
 * The sandbox launcher, run by `perl` (perl-base is Essential on Debian, so nothing to install): it makes
 * the namespaces itself (unshare(2)), forks pid 1 of the new pid namespace, which sets everything up and
 * execs the command, and itself stays outside to report pid 1's exact wait status. It is a tiny
 * interpreter: the TypeScript side decides every mount and step (plan.ts) and sends them as NUL-separated
 * tokens on stdin; the script only executes them, with no shell and no other exec(): unshare(2), mount(2),
 * pivot_root(2), sethostname(2), prctl(2) and the xattr calls go through perl's syscall().
 *
 * Status goes to fd 3 as NUL-separated (kind, value) records: B = started; W = wait status of pid 1;
 * S = path of a mount stub it had to create inside the rootfs (removed again afterwards); E = setup
 * failure; U = the namespaces could not be made; X = the command could not be executed; A/N/V/Z = xattrs
 * of the dir given as third argument (the overlay upper), read once the command is done. fd 3 is
 * close-on-exec in pid 1.
 */
export const LAUNCHER_PERL = String.raw`
# No "use strict; no warnings": loading strict.pm and warnings.pm costs milliseconds on every run. Perl's
# few default-on warnings must not reach the command's stderr (ours), so they are dropped.
BEGIN { $SIG{__WARN__} = sub {}; }
umask 022;
open(my $st, '>&=', 3) or exit 125;
select((select($st), $| = 1)[0]);
fcntl($st, 2, 1);
print $st "B\0\0";
my $in = do { local $/; <STDIN> };
my @t = split /\0/, $in, -1;
pop @t if @t && $t[-1] eq '';
open(STDIN, '<', '/dev/null');
# After unshare(2) our child is pid 1 of the new pid namespace and execs the command, while we stay outside
# it to report the command's exact wait status ("W") on fd 3 (an init's own status would lose a signal).
# Syscalls are made directly (no fork/exec of mount(8) per mount point); $ARGV[0] = "name=nr,...".
my %NR = map { split /=/ } split /,/, $ARGV[0];
# The namespaces, made here rather than by unshare(1) (one exec less per run): $ARGV[1] = "flags:uid:gid",
# uid/gid set for a user namespace mapping the caller to root. Then every mount is made private, as
# unshare --propagation private does, so nothing propagates back to the host.
{
  my ($flags, $uid, $gid) = split /:/, $ARGV[1], -1;
  syscall(0 + $NR{unshare}, 0 + $flags) == 0 or do { print $st "U\0$!\0"; exit 125; };
  if (length $uid) {
    for (['setgroups', 'deny'], ['uid_map', "0 $uid 1"], ['gid_map', "0 $gid 1"]) {
      open(my $fh, '>', "/proc/self/$_->[0]") or do { print $st "U\0$_->[0]: $!\0"; exit 125; };
      print $fh $_->[1]; close($fh) or do { print $st "U\0$_->[0]: $!\0"; exit 125; };
    }
  }
  my ($none, $slash) = ('none', '/'); # syscall() wants writable strings
  syscall(0 + $NR{mount}, $none, $slash, 0, 16384 | 262144, 0) == 0 or do { print $st "U\0make / private: $!\0"; exit 125; };
}
# PR_SET_PDEATHSIG: if kiln dies, we die, and then pid 1 (below) and so the whole namespace.
sub die_with_parent { syscall(0 + $NR{prctl}, 1, 9, 0, 0, 0); }
die_with_parent();
# Opened now: pid 1's pivot_root moves the root of every process in this mount namespace, ours included.
my $upper;
if (defined $ARGV[2]) { opendir($upper, $ARGV[2]) or undef $upper; }
my $init = fork();
if (!defined $init) { print $st "E\0fork: $!\0"; exit 125; }
if ($init) {
  while (waitpid($init, 0) == -1) { last unless $! == 4; }
  print $st "W\0$?\0";
  scan_xattrs() if defined $upper && chdir($upper);
  exit 0;
}
closedir($upper) if defined $upper;
# After the run, the xattrs of the overlay upper dir (the cwd: overlay markers, capabilities) for the diff,
# which would otherwise need a getfattr process: A = path relative to it, N = name, V = hex value, Z = done.
# Every process of the run is gone by now (pid 1 exited), and no symlink is followed.
sub scan_xattrs {
  xattrs_of('.', '');
  my @dirs = ('.');
  while (@dirs) {
    my $rel = shift @dirs;
    opendir(my $dh, $rel) or return;
    for my $n (readdir($dh)) {
      next if $n eq '.' || $n eq '..';
      my $r = $rel eq '.' ? $n : "$rel/$n";
      lstat("./$r") or next;
      push @dirs, $r if -d _;
      xattrs_of("./$r", $r);
    }
    closedir($dh);
  }
  print $st "Z\0\0";
}
sub xattrs_of {
  my ($p, $r) = @_;
  my $list = "\0" x 65536;
  my $len = syscall(0 + $NR{llistxattr}, $p, $list, 65536);
  return unless $len > 0;
  print $st "A\0$r\0";
  for my $name (split /\0/, substr($list, 0, $len)) {
    my $val = "\0" x 65536;
    my $vl = syscall(0 + $NR{lgetxattr}, $p, $name, $val, 65536);
    print $st "N\0$name\0V\0" . unpack('H*', substr($val, 0, $vl)) . "\0" if $vl >= 0;
  }
}
my $root = '';
my ($T, $cwd);
my @env;
my $phase = 'E';
sub fail { print $st "$phase\0$_[0]\0"; exit 125; }
sub next_tok { fail('launcher: truncated plan') unless @t; return shift @t; }
die_with_parent();
sub sys_mount {
  my ($src, $tgt, $type, $flags, $data) = @_;
  return syscall(0 + $NR{mount}, $src, $tgt, $type, 0 + $flags, length($data) ? $data : 0) == 0;
}
sub resolve {
  my ($p, $kind, $rec) = @_;
  my @todo = grep { length($_) && $_ ne '.' } split m{/}, $p;
  my @done;
  my $links = 0;
  while (@todo) {
    my $c = shift @todo;
    if ($c eq '..') { pop @done; next; }
    my $h = join('/', $root, @done, $c);
    if (-l $h) {
      fail("$p: too many levels of symbolic links") if ++$links > 40;
      my $l = readlink($h);
      @done = () if substr($l, 0, 1) eq '/';
      unshift @todo, grep { length($_) && $_ ne '.' } split m{/}, $l;
      next;
    }
    if (!-e $h) {
      if (!@todo && $kind eq 'f') { open(my $fh, '>', $h) or fail("create $p: $!"); close($fh); }
      else { mkdir($h, 0755) or fail("mkdir $p: $!"); }
      print $st "S\0/" . join('/', @done, $c) . "\0" if $rec;
    } elsif (@todo && !-d $h) {
      fail("$p: not a directory");
    }
    push @done, $c;
  }
  return join('/', $root, @done);
}
while (@t) {
  my $op = shift @t;
  if ($op eq 'R') { $root = next_tok(); }
  elsif ($op eq 'O') {
    my ($data, $dir) = (next_tok(), next_tok());
    chdir($dir) or fail("chdir $dir: $!");
    sys_mount('overlay', $root, 'overlay', 0, $data) or fail("overlay mount on $root ($data): $!");
    chdir('/');
  }
  elsif ($op eq 'T') { my ($p, $k, $r) = (next_tok(), next_tok(), next_tok()); $T = resolve($p, $k, $r); }
  elsif ($op eq 'M') {
    # M source fstype flags data remount-flags: a bind cannot change its flags in the first call.
    my ($src, $type, $flags, $data, $re) = (next_tok(), next_tok(), next_tok(), next_tok(), next_tok());
    sys_mount($src, $T, $type, $flags, $data) or fail("mount $type $src on $T: $!");
    if ($re) { sys_mount(0, $T, 0, $re, '') or fail("remount $T: $!"); }
  }
  elsif ($op eq 'Y') {
    # sysfs read-only; where a fresh sysfs is not allowed (user namespace without its own netns) bind the host's.
    sys_mount('sysfs', $T, 'sysfs', 15, '')
      or (sys_mount('/sys', $T, 0, 20480, '') and sys_mount(0, $T, 0, 4129 + 14, ''))
      or fail("mount sysfs on $T: $!");
  }
  elsif ($op eq 'P') {
    # Mask a /proc or /sys path like runc: /dev/null over a file, an empty read-only tmpfs over a directory.
    my $p = "$root" . next_tok();
    if (-d $p) { sys_mount('tmpfs', $p, 'tmpfs', 1, '') or fail("mask $p: $!"); }
    elsif (-e $p) { sys_mount("$root/dev/null", $p, 0, 4096, '') or fail("mask $p: $!"); }
  }
  elsif ($op eq 'Q') {
    # Read-only bind of a /proc path onto itself (runc's readonlyPaths).
    my $p = "$root" . next_tok();
    if (-e $p) {
      sys_mount($p, $p, 0, 20480, '') or fail("bind $p: $!");
      sys_mount(0, $p, 0, 4129 + 14, '') or fail("remount $p read-only: $!");
    }
  }
  elsif ($op eq 'L') { my ($to, $p) = (next_tok(), next_tok()); symlink($to, "$root$p") or fail("symlink $p: $!"); }
  elsif ($op eq 'H') {
    # sethostname(2): /proc/sys/kernel/hostname is not writable from a user namespace.
    my $h = next_tok();
    syscall(0 + $NR{sethostname}, $h, length($h)) == 0 or fail("sethostname: $!");
  }
  elsif ($op eq 'N') {
    # ifup lo: SIOCGIFFLAGS / SIOCSIFFLAGS on a UDP socket, IFF_UP|IFF_RUNNING.
    socket(my $s, 2, 2, 0) or fail("socket: $!");
    my $req = pack('a16 x24', 'lo');
    ioctl($s, 0x8913, $req) or fail("SIOCGIFFLAGS lo: $!");
    my $flags = unpack('x16 s', $req) | 0x41;
    ioctl($s, 0x8914, pack('a16 s x22', 'lo', $flags)) or fail("SIOCSIFFLAGS lo: $!");
    close($s);
  }
  elsif ($op eq 'C') {
    # pivot_root(".", ".") and detach the old root (runc's way): unlike a chroot, no path leads back to the host.
    chdir($root) or fail("chdir $root: $!");
    my ($new, $old) = ('.', '.'); # syscall() wants writable strings
    syscall(0 + $NR{pivot_root}, $new, $old) == 0 or fail("pivot_root $root: $!");
    syscall(0 + $NR{umount2}, $new, 2) == 0 or fail("detach old root: $!");
    chdir('/') or fail("chdir /: $!");
    $root = '';
  }
  elsif ($op eq 'K') {
    # Shrink the capability bounding set to the default; root's capabilities after exec are bounded by it.
    my %keep = map { $_ => 1 } split /,/, next_tok();
    my $last = 40;
    if (open(my $fh, '<', '/proc/sys/kernel/cap_last_cap')) { $last = 0 + <$fh>; close($fh); }
    for my $cap (0 .. $last) {
      next if $keep{$cap};
      syscall(0 + $NR{prctl}, 24, $cap, 0, 0, 0) == 0 or fail("drop capability $cap: $!");
    }
  }
  elsif ($op eq 'W') { $cwd = next_tok(); resolve($cwd, 'd', 0); }
  elsif ($op eq 'U') {
    my ($uid, $gid, $groups) = (next_tok(), next_tok(), next_tok());
    # setgroups(2) with exactly the given list (perl's $) would always add the gid to it); "-" = leave
    # them (a user namespace mapped by an unprivileged caller has setgroups denied).
    if ($groups ne '-') {
      my @g = length($groups) ? split(/,/, $groups) : ();
      my $list = pack('L*', @g);
      syscall(0 + $NR{setgroups}, scalar(@g), @g ? $list : 0) == 0 or fail("setgroups($groups): $!");
    }
    $( = $gid;
    $) = "$gid";
    fail("setgid($gid): $!") if $( != $gid || (split / /, $))[0] != $gid;
    ($<, $>) = ($uid, $uid);
    fail("setuid($uid): $!") if $< != $uid || $> != $uid;
    die_with_parent(); # a uid change clears it
  }
  elsif ($op eq 'E') { push @env, next_tok(); }
  elsif ($op eq 'X') {
    my $n = next_tok();
    my @argv = map { next_tok() } 1 .. $n;
    $phase = 'X';
    chdir($cwd) or fail("chdir $cwd: $!") if defined $cwd;
    %ENV = ();
    for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v // ''; }
    # Like runc (so Docker and BuildKit): without HOME the user's home from the image's /etc/passwd, or "/".
    if (!exists $ENV{HOME}) {
      my $home = '/';
      if (open(my $pw, '<', '/etc/passwd')) {
        while (my $l = <$pw>) { my @f = split /:/, $l; if (@f > 5 && $f[2] eq "$<") { $home = $f[5]; last; } }
        close($pw);
      }
      $ENV{HOME} = $home;
    }
    exec { $argv[0] } @argv;
    fail("exec $argv[0]: $!");
  }
  else { fail("launcher: unknown op $op"); }
}
fail('launcher: plan has no exec');
`;
