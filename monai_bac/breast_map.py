"""The codes of the breast map (the paper's Fig. 2), used by every module that reads or writes one."""

__all__ = ["BACKGROUND", "PERIPHERY", "COMPRESSED", "PECTORAL", "BREAST_REGIONS"]

#: directly exposed to the beam (no tissue)
BACKGROUND = 0
#: uncompressed rim of the breast, between the skin line and the paddle contact
PERIPHERY = 1
#: the compressed region (paddle contact): constant thickness, where Eq. (4) holds best
COMPRESSED = 2
#: pectoral muscle (MLO views)
PECTORAL = 3
#: the codes that are breast tissue
BREAST_REGIONS = (PERIPHERY, COMPRESSED, PECTORAL)
