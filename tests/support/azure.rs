//! A stand-in for the Azure DNS record-set API on loopback (filled in below).
