"""Photometric operations on uint8 RGB images (numpy + OpenCV).

Colour jitter components, grayscale, Gaussian blur and solarization as
torchvision applies them to PIL images, without torchvision. Every function
takes an ``(H, W, 3)`` uint8 RGB array and returns a new uint8 array of the
same shape; randomness (which factor, whether to apply) is the caller's.
"""
import cv2
import numpy as np


def _to_uint8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def _gray(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma ``(H, W)`` uint8, as Pillow's ``convert('L')``."""
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """Scale the intensities (blend with black)."""
    return _to_uint8(img.astype(np.float32) * factor)


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean gray level of the image."""
    mean = float(_gray(img).mean())
    return _to_uint8(mean + factor * (img.astype(np.float32) - mean))


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the grayscale image."""
    gray = _gray(img).astype(np.float32)[..., None]
    return _to_uint8(gray + factor * (img.astype(np.float32) - gray))


def adjust_hue(img: np.ndarray, factor: float) -> np.ndarray:
    """Rotate the hue by ``factor`` turns (``-0.5..0.5``), in float HSV."""
    hsv = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = np.mod(hsv[..., 0] + factor * 360.0, 360.0)
    return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255)


def to_grayscale(img: np.ndarray) -> np.ndarray:
    """Luma replicated to 3 channels."""
    return np.repeat(_gray(img)[..., None], 3, axis=2)


def gaussian_kernel1d(kernel_size: int, sigma: float) -> np.ndarray:
    """torchvision's normalised 1-D Gaussian over ``kernel_size`` taps."""
    half = (kernel_size - 1) / 2
    x = np.linspace(-half, half, kernel_size)
    pdf = np.exp(-0.5 * (x / sigma)**2)
    return (pdf / pdf.sum()).astype(np.float32)


def gaussian_blur(img: np.ndarray, sigma: float,
                  kernel_size: int = 9) -> np.ndarray:
    """Separable Gaussian blur with reflect padding, as torchvision."""
    kernel = gaussian_kernel1d(kernel_size, sigma)
    out = cv2.sepFilter2D(img.astype(np.float32), -1, kernel, kernel,
                          borderType=cv2.BORDER_REFLECT_101)
    return _to_uint8(out)


def solarize(img: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Invert the pixels at or above ``threshold``."""
    return np.where(img >= threshold, 255 - img, img).astype(np.uint8)
