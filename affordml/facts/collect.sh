#!/bin/sh
# Prints a host snapshot as records for affordml.facts.collect.parse_records.
# POSIX sh, read-only: it changes nothing on the host. One record per item:
#   @@AFFORDML@@ file PATH / link PATH / dir PATH / cmd NAME, then the body, then @@AFFORDML@@ end
M=@@AFFORDML@@
file() { [ -r "$1" ] && [ -f "$1" ] || return 0; echo "$M file $1"; cat "$1" 2>/dev/null; echo; echo "$M end"; }
link() { [ -L "$1" ] || return 0; echo "$M link $1"; readlink "$1"; echo "$M end"; }
dir() { [ -d "$1" ] || return 0; echo "$M dir $1"; ls -1 "$1" 2>/dev/null; echo "$M end"; }
cmd() { name=$1; shift; command -v "$1" >/dev/null 2>&1 || return 0; echo "$M cmd $name"; "$@" 2>/dev/null; echo; echo "$M end"; }

file /proc/cpuinfo
file /proc/meminfo
file /proc/cmdline
file /etc/os-release
file /etc/hostname
file /proc/sys/kernel/osrelease
file /proc/net/route
dir /sys/firmware/efi
dir /sys/firmware/efi/efivars
file /sys/module/vfio_pci/initstate
file /sys/module/kvm_intel/parameters/nested
file /sys/module/kvm_amd/parameters/nested
dir /dev/vfio
[ -e /dev/kvm ] && { echo "$M file /dev/kvm"; echo present; echo "$M end"; }
rel=$(uname -r 2>/dev/null)
for f in modules.builtin modules.dep; do
  p=/lib/modules/$rel/$f
  [ -r "$p" ] && { echo "$M file /lib/modules/KERNEL/$f"; grep -E '(vfio|nouveau|nvidia|kvm)' "$p" 2>/dev/null; echo; echo "$M end"; }
done
dir /sys/bus/pci/devices
for d in /sys/bus/pci/devices/*; do
  [ -d "$d" ] || continue
  for a in vendor device class subsystem_vendor subsystem_device numa_node sriov_totalvfs resource; do file "$d/$a"; done
  link "$d/driver"
  link "$d/iommu_group"
done
dir /sys/kernel/iommu_groups
for g in /sys/kernel/iommu_groups/*; do dir "$g/devices"; done
dir /sys/class/net
for n in /sys/class/net/*; do
  [ -e "$n" ] || continue
  for a in address operstate speed mtu type; do file "$n/$a"; done
  link "$n/device"
  dir "$n/bridge"
  dir "$n/wireless"
done
cmd "ip -j addr" ip -j addr
cmd "ip -j route show default" ip -j route show default
cmd "lsblk -J -b" lsblk -J -b -o NAME,SIZE,TYPE,ROTA,MOUNTPOINT
cmd "df -B1 -P /" df -B1 -P /
cmd "df -B1 -P /var/lib" df -B1 -P /var/lib
cmd "systemd-detect-virt" systemd-detect-virt
cmd "mokutil --sb-state" mokutil --sb-state
cmd "id -u" id -u
cmd "sudo -n true" sh -c 'sudo -n true && echo yes || echo no'
cmd "nvidia-smi -q -x" nvidia-smi -q -x
cmd "uname -m" uname -m
exit 0
