/**
 * The in-namespace launcher, run by `perl` (perl-base is Essential on Debian, so nothing to install) in
 * the new namespaces; it forks pid 1 of the new pid namespace, which sets up and execs the command. It is a tiny interpreter: the TypeScript side decides every mount and
 * step (see plan.ts) and sends them as NUL-separated tokens on stdin; the script only executes them,
 * without a shell and without any other exec(): mounts are made with the mount(2) syscall.
 *
 * Status goes to fd 3 as NUL-separated records: "B","" = the launcher started; "W",status = the wait status of pid 1; "S",path = a mount stub it had to create inside the
 * rootfs (removed again afterwards); "E",msg = setup failure; "X",msg = the command could not be executed.
 * fd 3 is close-on-exec, so EOF without a record means the command was exec'd.
 */
export const LAUNCHER_PERL = String.raw`
use strict; no warnings;
umask 022;
open(my $st, '>&=', 3) or exit 125;
select((select($st), $| = 1)[0]);
fcntl($st, 2, 1);
print $st "B\0\0";
my $in = do { local $/; <STDIN> };
my @t = split /\0/, $in, -1;
pop @t if @t && $t[-1] eq '';
open(STDIN, '<', '/dev/null');
# unshare ran us in the new namespaces but without --fork: our child is pid 1 of the new pid namespace and
# execs the command, while we stay outside it to report the command's exact wait status ("W") on fd 3
# (unshare --fork loses it when the command dies from a signal).
my $init = fork();
if (!defined $init) { print $st "E\0fork: $!\0"; exit 125; }
if ($init) {
  while (waitpid($init, 0) == -1) { last unless $! == 4; }
  print $st "W\0$?\0";
  exit 0;
}
my ($root, $T, @env, $cwd) = ('');
my $phase = 'E';
sub fail { print $st "$phase\0$_[0]\0"; exit 125; }
sub next_tok { fail('launcher: truncated plan') unless @t; return shift @t; }
# mount(2) straight through syscall(): no fork/exec of mount(8) per mount point. $ARGV[0] is its number,
# $ARGV[1] sethostname's.
my $NR_MOUNT = 0 + $ARGV[0];
sub sys_mount {
  my ($src, $tgt, $type, $flags, $data) = @_;
  return syscall($NR_MOUNT, $src, $tgt, $type, 0 + $flags, length($data) ? $data : 0) == 0;
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
  elsif ($op eq 'L') { my ($to, $p) = (next_tok(), next_tok()); symlink($to, "$root$p") or fail("symlink $p: $!"); }
  elsif ($op eq 'H') {
    # sethostname(2): /proc/sys/kernel/hostname is not writable from a user namespace.
    my $h = next_tok();
    syscall(0 + $ARGV[1], $h, length($h)) == 0 or fail("sethostname: $!");
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
  elsif ($op eq 'C') { chroot($root) or fail("chroot $root: $!"); chdir('/') or fail("chdir /: $!"); $root = ''; }
  elsif ($op eq 'W') { $cwd = next_tok(); resolve($cwd, 'd', 0); }
  elsif ($op eq 'U') {
    my ($uid, $gid, $groups) = (next_tok(), next_tok(), next_tok());
    my @g = length($groups) ? split(/,/, $groups) : ($gid);
    $( = $gid;
    $) = join(' ', $gid, @g);
    fail("setgid($gid): $!") if $( != $gid || (split / /, $))[0] != $gid;
    ($<, $>) = ($uid, $uid);
    fail("setuid($uid): $!") if $< != $uid || $> != $uid;
  }
  elsif ($op eq 'E') { push @env, next_tok(); }
  elsif ($op eq 'X') {
    my $n = next_tok();
    my @argv = map { next_tok() } 1 .. $n;
    $phase = 'X';
    chdir($cwd) or fail("chdir $cwd: $!") if defined $cwd;
    %ENV = ();
    for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v // ''; }
    exec { $argv[0] } @argv;
    fail("exec $argv[0]: $!");
  }
  else { fail("launcher: unknown op $op"); }
}
fail('launcher: plan has no exec');
`;
