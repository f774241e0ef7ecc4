//! PCI devices in sysfs: enumeration, ids, driver binding.
