"""SAM's two-way transformer, with padded prompt tokens masked out as attention keys.

Idea from SAM (Kirillov et al., 2023): prompt tokens and image tokens update each other. Every block
runs (1) token self-attention, (2) token-to-image cross-attention, (3) an MLP on the tokens and
(4) image-to-token cross-attention; a final token-to-image attention closes the stack. Here the
prompt tokens include padded text tokens, so a ``token_mask`` removes them as keys from (1) and (4).
Padded tokens still compute their own (ignored) outputs but never influence a real token or pixel.
"""
from typing import Optional, Tuple, Type

from torch import Tensor, nn

from .masked_attention import MaskedAttention
from .sam_layers import MLPBlock


class TwoWayAttentionBlock(nn.Module):
    """One block of the two-way transformer.

    Args:
        embedding_dim (int): Channels of tokens and image embedding.
        num_heads (int): Attention heads.
        mlp_dim (int): Hidden channels of the token MLP. Defaults to 2048.
        activation (Type[nn.Module]): Activation of the token MLP. Defaults to ``nn.ReLU``.
        attention_downsample_rate (int): Channel reduction inside the two cross-attentions.
            Defaults to 2.
        skip_first_layer_pe (bool): Do not add the token positional encoding before the
            self-attention (SAM does so in its first block). Defaults to False.
    """

    def __init__(self,
                 *,
                 embedding_dim: int,
                 num_heads: int,
                 mlp_dim: int = 2048,
                 activation: Type[nn.Module] = nn.ReLU,
                 attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = MaskedAttention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)

        self.cross_attn_token_to_image = MaskedAttention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)

        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)

        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = MaskedAttention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate)

        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self,
                queries: Tensor,
                keys: Tensor,
                query_pe: Tensor,
                key_pe: Tensor,
                token_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Update tokens (``queries``, (B, N, C)) and image (``keys``, (B, HW, C)).

        ``token_mask`` is (B, N) bool, True = real token, or None (all real).
        """
        # (1) token self-attention; padded tokens are no keys
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries, key_mask=token_mask)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries, key_mask=token_mask)
        queries = self.norm1(queries)

        # (2) tokens attend to the image
        q = queries + query_pe
        k = keys + key_pe
        queries = queries + self.cross_attn_token_to_image(q=q, k=k, v=keys)
        queries = self.norm2(queries)

        # (3) token MLP
        queries = self.norm3(queries + self.mlp(queries))

        # (4) image attends to the tokens; padded tokens are no keys
        q = queries + query_pe
        k = keys + key_pe
        keys = keys + self.cross_attn_image_to_token(q=k, k=q, v=queries, key_mask=token_mask)
        keys = self.norm4(keys)
        return queries, keys


class TwoWayTransformer(nn.Module):
    """A stack of two-way blocks followed by a final token-to-image attention.

    Args:
        depth (int): The number of two-way blocks (SAM: 2; the paper's "Add N dec layers"
            baseline: 2 + N).
        embedding_dim (int): Channels of tokens and image embedding.
        num_heads (int): Attention heads.
        mlp_dim (int): Hidden channels of the token MLPs.
        activation (Type[nn.Module]): Activation of the token MLPs. Defaults to ``nn.ReLU``.
        attention_downsample_rate (int): Channel reduction inside the cross-attentions.
            Defaults to 2.
    """

    def __init__(self,
                 *,
                 depth: int,
                 embedding_dim: int,
                 num_heads: int,
                 mlp_dim: int,
                 activation: Type[nn.Module] = nn.ReLU,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                activation=activation,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=(i == 0)) for i in range(depth))

        self.final_attn_token_to_image = MaskedAttention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self,
                image_embedding: Tensor,
                image_pe: Tensor,
                point_embedding: Tensor,
                token_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Run the transformer.

        Args:
            image_embedding (Tensor): (B, C, H, W).
            image_pe (Tensor): Positional encoding of the image grid, (B, C, H, W).
            point_embedding (Tensor): Prompt tokens, (B, N, C); also their positional encoding.
            token_mask (Tensor, optional): (B, N) bool, True = real token.

        Returns:
            Tuple[Tensor, Tensor]: tokens (B, N, C) and image tokens (B, H*W, C).
        """
        # (B, C, H, W) -> (B, H*W, C)
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = point_embedding

        for layer in self.layers:
            queries, keys = layer(
                queries=queries,
                keys=keys,
                query_pe=point_embedding,
                key_pe=key_pe,
                token_mask=token_mask)

        q = queries + point_embedding
        k = keys + key_pe
        queries = queries + self.final_attn_token_to_image(q=q, k=k, v=keys)
        queries = self.norm_final_attn(queries)
        return queries, keys
