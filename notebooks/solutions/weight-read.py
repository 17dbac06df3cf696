# Exercise "weight-read": fill in the body, then run the check below.
def weight_read_ms(params: float, bytes_per_number: int, bandwidth: float) -> float:
    """Milliseconds to read every weight once: params numbers of bytes_per_number bytes at bandwidth bytes/s."""
    return 1000 * params * bytes_per_number / bandwidth
