"""Global-retrieval candidate mining (UniME-V2 eq. 1; U-MARVEL §3.2.2) and the hard-negative artifacts."""
